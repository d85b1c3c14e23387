//! SSRF guard: no request reaches a private, loopback, link-local, metadata or otherwise
//! internal address unless its host is allow-listed. Names are resolved first and every
//! resolved address is checked (a resolver plugged into the HTTP client, so the check and
//! the connection use the same addresses); IP literals are checked before each request and
//! each redirect hop.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

/// Why an address may not be fetched, or `None` when it is public. Every IPv6 form that
/// embeds an IPv4 address (mapped, compatible, translated, NAT64, 6to4, Teredo, ISATAP) is
/// judged by the IPv4 address inside it.
pub fn internal_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

fn v4_of(hi: u16, lo: u16) -> Ipv4Addr {
    Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo))
}

fn v6_reason(v6: std::net::Ipv6Addr) -> Option<&'static str> {
    let s = v6.segments();
    if let Some(v4) = v6.to_ipv4_mapped() {
        return v4_reason(v4);
    }
    if v6.is_loopback() {
        return Some("loopback");
    }
    if v6.is_unspecified() {
        return Some("unspecified");
    }
    // IPv4-compatible `::a.b.c.d` (deprecated by RFC 4291; never a real destination).
    if s[..6] == [0; 6] {
        return Some("an IPv4-compatible IPv6 address (deprecated)");
    }
    // IPv4-translated `::ffff:0:a.b.c.d` (SIIT).
    if s[..4] == [0; 4] && s[4] == 0xffff && s[5] == 0 {
        return v4_reason(v4_of(s[6], s[7])).or(Some("an IPv4-translated IPv6 address"));
    }
    let seg0 = s[0];
    if seg0 & 0xffc0 == 0xfe80 {
        return Some("link-local");
    }
    if seg0 & 0xffc0 == 0xfec0 {
        return Some("site-local (deprecated)");
    }
    if seg0 & 0xfe00 == 0xfc00 {
        return Some("private (unique local, incl. cloud metadata fd00:ec2::254)");
    }
    if v6.is_multicast() {
        return Some("multicast");
    }
    // NAT64, well-known 64:ff9b::/96 and local-use 64:ff9b:1::/48: IPv4 in the low 32 bits.
    if seg0 == 0x64 && s[1] == 0xff9b {
        return v4_reason(v4_of(s[6], s[7]));
    }
    // 6to4 2002:AABB:CCDD::/48: the router's IPv4 address in bits 16..48.
    if seg0 == 0x2002 {
        return v4_reason(v4_of(s[1], s[2]));
    }
    // Teredo 2001:0::/32: the server's IPv4 in bits 32..64, the client's, inverted, in the
    // low 32 bits.
    if seg0 == 0x2001 && s[1] == 0 {
        return v4_reason(v4_of(s[2], s[3])).or_else(|| v4_reason(v4_of(!s[6], !s[7])));
    }
    // ISATAP interface ids `::0:5efe:a.b.c.d` / `::200:5efe:a.b.c.d` under any prefix.
    if s[4] & 0xfdff == 0 && s[5] == 0x5efe {
        return v4_reason(v4_of(s[6], s[7]));
    }
    None
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

/// Why a destination cannot be connected to.
#[derive(Debug)]
pub enum NoRoute {
    /// The SSRF guard refused the destination.
    Guard(String),
    /// The name has no address.
    Lookup(String),
}

/// The address to connect to for `host:port`, when the guard allows it: an IP literal or
/// every address the name resolves to must be public, unless the host is allow-listed. A
/// client that connects on its own (the renderer's proxy, git) connects to this address,
/// not to the name again, so a second lookup cannot lead elsewhere. `who` names it in the
/// refusal.
pub async fn checked_address(allow: &AllowList, host: &str, port: u16, who: &str) -> Result<SocketAddr, NoRoute> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((bare, port)).await.map_err(|e| NoRoute::Lookup(format!("{host}: {e}")))?.collect(),
    };
    if !allow.allows(bare)
        && let Some((ip, why)) = addrs.iter().find_map(|a| internal_reason(a.ip()).map(|w| (a.ip(), w)))
    {
        return Err(NoRoute::Guard(format!("{host} is {ip}, which is {why}; not fetched by {who} (allow it with crawl.allow_hosts / --allow-host)")));
    }
    addrs.first().copied().ok_or_else(|| NoRoute::Lookup(format!("{host} has no address")))
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
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "172.32.0.1", "2002:5db8:d822::1", "2001:0:5db8:d822::a3b5:e7fe", "2001:db8::1"] {
            assert!(internal_reason(ip.parse().unwrap()).is_none(), "{ip} is public");
        }
        // Every IPv6 form that embeds an internal IPv4 address (probing got through with
        // `[::127.0.0.1]`, 6to4 and Teredo).
        for ip in [
            "::127.0.0.1",
            "::10.0.0.1",
            "::169.254.169.254",
            "::8.8.8.8",
            "::ffff:0:127.0.0.1",
            "::ffff:0:10.1.2.3",
            "64:ff9b:1::7f00:1",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "2002:c0a8:101:5::1",
            "2001:0:7f00:1::",
            "2001:0:5db8:d822:0:0:80ff:fffe",
            "2001:0:4136:e378:8000:63bf:f5ff:fffe",
            "2606:4700::5efe:a00:1",
            "fe80::200:5efe:7f00:1",
            "fec0::1",
        ] {
            assert!(internal_reason(ip.parse().unwrap()).is_some(), "{ip} embeds an internal IPv4 address and must be refused");
        }
        assert!(AllowList::default().check_url(&url::Url::parse("http://[::127.0.0.1]:8080/x").unwrap()).is_err());
        let allow = AllowList::new(&["127.0.0.1".into()]);
        assert!(allow.check_url(&url::Url::parse("http://127.0.0.1:8080/x").unwrap()).is_ok());
        assert!(allow.check_url(&url::Url::parse("http://10.0.0.1/x").unwrap()).unwrap_err().contains("private"));
        assert!(allow.check_url(&url::Url::parse("http://[::1]/x").unwrap()).is_err());
    }
}
