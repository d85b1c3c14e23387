//! SSRF guard: no request reaches a private, loopback, link-local, metadata or otherwise
//! internal address unless its host is allow-listed. Names are resolved first and every
//! resolved address is checked (a resolver plugged into the HTTP client, so the check and
//! the connection use the same addresses); IP literals are checked before each request and
//! each redirect hop.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

/// Why an address may not be fetched, or `None` when it is public.
pub fn internal_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return v4_reason(v4);
            }
            let seg0 = v6.segments()[0];
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if seg0 & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if seg0 & 0xfe00 == 0xfc00 {
                Some("private (unique local, incl. cloud metadata fd00:ec2::254)")
            } else if v6.is_multicast() {
                Some("multicast")
            } else if seg0 == 0x64 && v6.segments()[1] == 0xff9b {
                // NAT64 embeds an IPv4 address in the low 32 bits.
                let s = v6.segments();
                v4_reason(Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8))
            } else {
                None
            }
        }
    }
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local (incl. cloud metadata 169.254.169.254)")
    } else if ip.is_unspecified() || o[0] == 0 {
        Some("unspecified")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some("shared address space (CGNAT)")
    } else if ip.is_broadcast() || ip.is_multicast() || o[0] >= 240 {
        Some("broadcast, multicast or reserved")
    } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
        Some("IETF protocol assignments")
    } else {
        None
    }
}

/// Hosts explicitly allowed to resolve to internal addresses (case-insensitive; `host` or
/// `host:port` as written in the URL's authority).
#[derive(Debug, Clone, Default)]
pub struct AllowList(Arc<Vec<String>>);

impl AllowList {
    pub fn new(hosts: &[String]) -> Self {
        Self(Arc::new(hosts.iter().map(|h| h.trim().to_ascii_lowercase()).filter(|h| !h.is_empty()).collect()))
    }

    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        self.0.iter().any(|h| h.trim_start_matches('[').trim_end_matches(']') == host)
    }

    /// Check a URL whose host is an IP literal (names are checked by [`GuardedResolver`]).
    pub fn check_url(&self, url: &url::Url) -> Result<(), String> {
        let Some(host) = url.host() else { return Err("no host".into()) };
        let ip = match host {
            url::Host::Ipv4(v4) => IpAddr::V4(v4),
            url::Host::Ipv6(v6) => IpAddr::V6(v6),
            url::Host::Domain(_) => return Ok(()),
        };
        match internal_reason(ip) {
            Some(why) if !self.allows(&ip.to_string()) => Err(format!("{ip} is {why}; not fetched (allow it with crawl.allow_hosts / --allow-host)")),
            _ => Ok(()),
        }
    }
}

/// A DNS resolver for the HTTP client that refuses names resolving to internal addresses.
pub struct GuardedResolver {
    pub allow: AllowList,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if allow.allows(&host) {
                return Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs);
            }
            // Every address must be public: a name with one internal address is refused
            // whole (DNS rebinding picks among them).
            if let Some((ip, why)) = addrs.iter().find_map(|a| internal_reason(a.ip()).map(|w| (a.ip(), w))) {
                return Err(format!("{host} resolves to {ip}, which is {why}; not fetched (allow it with crawl.allow_hosts / --allow-host)").into());
            }
            if addrs.is_empty() {
                return Err(format!("{host} has no address").into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Is this error (anywhere in its source chain) the guard refusing an address?
pub fn is_guard_error(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        let s = err.to_string();
        if s.contains("not fetched (allow it with") {
            return Some(s);
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_refused_public_ones_pass() {
        for ip in ["127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "0.0.0.0", "100.64.0.1", "::1", "fe80::1", "fd00:ec2::254", "::ffff:10.0.0.1", "64:ff9b::a00:1", "255.255.255.255"] {
            assert!(internal_reason(ip.parse().unwrap()).is_some(), "{ip} must be refused");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "172.32.0.1"] {
            assert!(internal_reason(ip.parse().unwrap()).is_none(), "{ip} is public");
        }
        let allow = AllowList::new(&["127.0.0.1".into()]);
        assert!(allow.check_url(&url::Url::parse("http://127.0.0.1:8080/x").unwrap()).is_ok());
        assert!(allow.check_url(&url::Url::parse("http://10.0.0.1/x").unwrap()).unwrap_err().contains("private"));
        assert!(allow.check_url(&url::Url::parse("http://[::1]/x").unwrap()).is_err());
    }
}
