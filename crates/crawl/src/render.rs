//! JavaScript-rendered pages: headless Chromium, driven over WebDriver (`chromedriver`,
//! through `fantoccini`), loads each HTML page after the crawler has fetched it, and the
//! rendered DOM replaces the served HTML (a single-page app's shell becomes its content).
//!
//! Every request the browser makes (the page, its scripts, the script's own `fetch`es) goes
//! through [`GuardProxy`], a forward proxy inside this process that applies the crawler's
//! SSRF guard to each destination: internal addresses are refused unless allow-listed, the
//! address checked is the one connected to (no DNS rebinding between the two), and loopback
//! is proxied too (`--proxy-bypass-list=<-loopback>`). Robots.txt, the page cap, the scope
//! and the time limits stay the crawler's: the browser only renders pages the crawler
//! already fetched, one at a time per crawl.

use crate::guard::{AllowList, NoRoute, checked_address};
use http_body_util::{BodyExt, Empty, combinators::BoxBody};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use url::Url;

/// How pages are rendered. `driver` is the `chromedriver` to start (Debian:
/// `chromium-driver`); `browser` the Chromium binary when the driver should not find it
/// itself.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderConfig {
    pub driver: PathBuf,
    pub browser: Option<PathBuf>,
    /// Loading one page, its scripts included.
    pub timeout: Duration,
    /// The page counts as rendered once its text and resources have not changed for this
    /// long after the load event (a script that fetches content runs after it).
    pub settle: Duration,
}

impl Default for RenderConfig {
    fn default() -> Self {
        Self { driver: PathBuf::from("chromedriver"), browser: None, timeout: Duration::from_secs(30), settle: Duration::from_millis(300) }
    }
}

/// What went wrong with the renderer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("the renderer could not start: {0} (install chromium and chromium-driver, or set crawl.render_driver)")]
    Start(String),
    #[error("rendering failed: {0}")]
    Page(String),
}

/// A started browser session with its driver process and guard proxy. One page renders at a
/// time; [`Renderer::close`] ends the browser (dropping it kills the driver).
pub(crate) struct Renderer {
    client: fantoccini::Client,
    proxy: GuardProxy,
    one_at_a_time: tokio::sync::Mutex<()>,
    cfg: RenderConfig,
    _driver: Driver,
}

/// The driver process, in a process group of its own that the browser it starts joins:
/// dropped, the whole group is killed. A watchdog process kills the group too when this
/// process dies without dropping it (`kill -9`, OOM), so no browser outlives aidocs.
pub(crate) struct Driver {
    child: std::process::Child,
    watchdog: Option<std::process::Child>,
}

impl Driver {
    fn spawn(program: &std::path::Path, port: u16) -> std::io::Result<Self> {
        use std::os::unix::process::CommandExt;
        let child = std::process::Command::new(program)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        // Polls for this process once a second; when it is gone, kills the group.
        let watchdog = std::process::Command::new("sh")
            .args(["-c", "while kill -0 \"$0\" 2>/dev/null; do sleep 1; done; kill -9 \"-$1\" 2>/dev/null", &std::process::id().to_string(), &child.id().to_string()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| tracing::warn!(error = %e, "no watchdog for the renderer's driver (sh)"))
            .ok();
        Ok(Self { child, watchdog })
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill").args(["-KILL", "--", &format!("-{}", self.child.id())]).stderr(std::process::Stdio::null()).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(w) = &mut self.watchdog {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}

/// A free port on 127.0.0.1 (the driver cannot say which one it took).
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Start the driver on a free port of 127.0.0.1 and wait until it listens. The port is
/// free when chosen but another process may take it before the driver binds it: then the
/// driver exits at once, and another port is tried (three times).
pub(crate) async fn start_driver(cfg: &RenderConfig) -> Result<(Driver, u16), RenderError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match start_driver_once(cfg).await {
            Err(RenderError::Start(why)) if why.contains("exited at start") && attempt < 3 => {
                tracing::debug!(%why, "the renderer's driver did not start; another port");
            }
            other => return other,
        }
    }
}

async fn start_driver_once(cfg: &RenderConfig) -> Result<(Driver, u16), RenderError> {
    let port = free_port().map_err(|e| RenderError::Start(e.to_string()))?;
    let driver = cfg.driver.clone();
    let mut driver = tokio::task::spawn_blocking(move || Driver::spawn(&driver, port))
        .await
        .map_err(|e| RenderError::Start(e.to_string()))?
        .map_err(|e| RenderError::Start(format!("`{}`: {e}", cfg.driver.display())))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            break;
        }
        if let Ok(Some(status)) = driver.child.try_wait() {
            return Err(RenderError::Start(format!("`{}` exited at start ({status})", cfg.driver.display())));
        }
        if Instant::now() > deadline {
            return Err(RenderError::Start(format!("`{}` did not listen within 20 s", cfg.driver.display())));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((driver, port))
}

impl Renderer {
    pub(crate) async fn start(cfg: &RenderConfig, allow: AllowList, user_agent: &str) -> Result<Self, RenderError> {
        let proxy = GuardProxy::start(allow, cfg.timeout).await.map_err(|e| RenderError::Start(format!("guard proxy: {e}")))?;
        let (driver, port) = start_driver(cfg).await?;
        let args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-default-apps".into(),
            "--disable-extensions".into(),
            "--disable-sync".into(),
            "--no-first-run".into(),
            "--mute-audio".into(),
            format!("--user-agent={user_agent}"),
            format!("--proxy-server=http://{}", proxy.addr),
            // Loopback goes through the proxy too (Chromium bypasses it by default).
            "--proxy-bypass-list=<-loopback>".into(),
            "--window-size=1280,2000".into(),
        ];
        let mut options = serde_json::json!({ "args": args });
        if let Some(b) = &cfg.browser {
            options["binary"] = b.display().to_string().into();
        }
        let ms = cfg.timeout.as_millis() as u64;
        let caps = serde_json::json!({
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "timeouts": { "pageLoad": ms, "script": ms },
            "goog:chromeOptions": options,
        });
        let serde_json::Value::Object(caps) = caps else { unreachable!("an object literal") };
        let client = fantoccini::ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .map_err(|e| RenderError::Start(format!("no browser session: {e}")))?;
        Ok(Self { client, proxy, one_at_a_time: tokio::sync::Mutex::new(()), cfg: cfg.clone(), _driver: driver })
    }

    /// Load `url` and return the rendered DOM (`<html>...</html>`) once the page has settled.
    pub(crate) async fn render(&self, url: &Url) -> Result<String, RenderError> {
        let _one = self.one_at_a_time.lock().await;
        let fail = |e: fantoccini::error::CmdError| RenderError::Page(e.to_string());
        let deadline = Instant::now() + self.cfg.timeout;
        self.client.goto(url.as_str()).await.map_err(fail)?;
        // Settled: the load event has fired and neither the text nor the resources loaded
        // have changed for `settle`.
        const PROBE: &str = "return [document.readyState, document.body ? document.body.innerText.length : 0, performance.getEntriesByType('resource').length, document.documentElement.outerHTML.length]";
        let mut last = serde_json::Value::Null;
        let mut stable_since = Instant::now();
        loop {
            let now = self.client.execute(PROBE, Vec::new()).await.map_err(fail)?;
            if now != last {
                last = now;
                stable_since = Instant::now();
            } else if last[0] == "complete" && stable_since.elapsed() >= self.cfg.settle {
                break;
            }
            if Instant::now() > deadline {
                tracing::debug!(%url, "page did not settle in time; taking it as it is");
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.client.source().await.map_err(fail)
    }

    /// Requests of the browser the guard refused.
    pub(crate) fn blocked(&self) -> usize {
        self.proxy.blocked.load(Ordering::Relaxed)
    }

    /// End the browser session (the browser exits) and the driver.
    pub(crate) async fn close(&self) {
        if let Err(e) = self.client.clone().close().await {
            tracing::debug!(error = %e, "closing the browser session");
        }
        self.proxy.task.abort();
    }
}

type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// Connections the guard proxy holds at once (tunnels included); one past it is closed at
/// once. A page that opens hundreds of connections gets errors, not the crawler's memory.
/// Chromium itself opens at most 32 to a proxy.
pub(crate) const MAX_PROXY_CONNECTIONS: usize = 64;

/// A forward HTTP proxy on 127.0.0.1 that lets through only what the SSRF guard allows:
/// plain-HTTP requests are forwarded (never following redirects: the browser asks again for
/// the new URL, through the proxy), `CONNECT` opens a tunnel for HTTPS. At most
/// [`MAX_PROXY_CONNECTIONS`] at once, and a tunnel lasts at most one page's time limit.
pub(crate) struct GuardProxy {
    pub(crate) addr: SocketAddr,
    pub(crate) blocked: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for GuardProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl GuardProxy {
    pub(crate) async fn start(allow: AllowList, tunnel_limit: Duration) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let blocked = Arc::new(AtomicUsize::new(0));
        let counter = blocked.clone();
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_PROXY_CONNECTIONS));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    tracing::debug!("renderer proxy: {MAX_PROXY_CONNECTIONS} connections open; one more closed");
                    continue;
                };
                let (allow, blocked) = (allow.clone(), counter.clone());
                tokio::spawn(async move {
                    let slot = Arc::new(slot);
                    let service = hyper::service::service_fn(move |req| proxy(req, allow.clone(), blocked.clone(), slot.clone(), tunnel_limit));
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).with_upgrades().await;
                });
            }
        });
        Ok(Self { addr, blocked, task })
    }
}

fn empty() -> ProxyBody {
    Empty::<Bytes>::new().map_err(|never| match never {}).boxed()
}

fn answer(status: StatusCode, text: String) -> Response<ProxyBody> {
    let body = http_body_util::Full::new(Bytes::from(text)).map_err(|never| match never {}).boxed();
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r
}

async fn proxy(
    req: Request<Incoming>,
    allow: AllowList,
    blocked: Arc<AtomicUsize>,
    slot: Arc<tokio::sync::OwnedSemaphorePermit>,
    tunnel_limit: Duration,
) -> Result<Response<ProxyBody>, hyper::Error> {
    let (host, port) = match (req.uri().host(), req.method()) {
        (Some(h), &Method::CONNECT) => (h.to_owned(), req.uri().port_u16().unwrap_or(443)),
        (Some(h), _) if req.uri().scheme_str() == Some("http") => (h.to_owned(), req.uri().port_u16().unwrap_or(80)),
        _ => return Ok(answer(StatusCode::BAD_REQUEST, "a proxy request needs an absolute http URL or CONNECT".into())),
    };
    let addr = match checked_address(&allow, &host, port, "the renderer").await {
        Ok(a) => a,
        Err(NoRoute::Guard(why)) => {
            blocked.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%host, %why, "renderer request refused");
            return Ok(answer(StatusCode::FORBIDDEN, why));
        }
        Err(NoRoute::Lookup(why)) => return Ok(answer(StatusCode::BAD_GATEWAY, why)),
    };
    if req.method() == Method::CONNECT {
        // The tunnel keeps the connection's slot until it ends.
        tokio::spawn(async move {
            let _slot = slot;
            let Ok(upgraded) = hyper::upgrade::on(req).await else { return };
            let Ok(mut upstream) = TcpStream::connect(addr).await else { return };
            let _ = tokio::time::timeout(tunnel_limit, tokio::io::copy_bidirectional(&mut TokioIo::new(upgraded), &mut upstream)).await;
        });
        return Ok(Response::new(empty()));
    }
    let stream = match TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => return Ok(answer(StatusCode::BAD_GATEWAY, format!("{host}:{port}: {e}"))),
    };
    let (mut sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
        Ok(pair) => pair,
        Err(e) => return Ok(answer(StatusCode::BAD_GATEWAY, e.to_string())),
    };
    tokio::spawn(conn);
    let (mut parts, body) = req.into_parts();
    // Origin form for the server (`/path?query`), and no proxy headers passed on.
    parts.uri = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").parse().unwrap_or_default();
    parts.headers.remove("proxy-connection");
    parts.headers.remove(hyper::header::PROXY_AUTHORIZATION);
    match sender.send_request(Request::from_parts(parts, body)).await {
        Ok(resp) => Ok(resp.map(|b| b.boxed())),
        Err(e) => Ok(answer(StatusCode::BAD_GATEWAY, e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_guard_refuses_internal_destinations_unless_allowed() {
        let none = AllowList::default();
        for (host, port) in [("127.0.0.1", 80), ("[::1]", 80), ("169.254.169.254", 80), ("localhost", 8080), ("10.1.2.3", 443)] {
            match checked_address(&none, host, port, "the renderer").await {
                Err(NoRoute::Guard(why)) => assert!(why.contains("not fetched by the renderer"), "{host}: {why}"),
                other => panic!("{host}: {other:?}"),
            }
        }
        let allow = AllowList::new(&["127.0.0.1".into()]);
        assert_eq!(checked_address(&allow, "127.0.0.1", 9, "the renderer").await.unwrap(), "127.0.0.1:9".parse().unwrap());
        assert!(matches!(checked_address(&allow, "10.0.0.1", 80, "the renderer").await, Err(NoRoute::Guard(_))));
        assert!(matches!(checked_address(&allow, "no-such-host.invalid", 80, "the renderer").await, Err(NoRoute::Lookup(_))));
    }

    /// A page that opens connection after connection to the proxy: it holds at most
    /// `MAX_PROXY_CONNECTIONS`, every one past them is closed at once (read: end of stream),
    /// and a closed one frees its slot for the next.
    #[tokio::test]
    async fn the_proxy_holds_a_bounded_number_of_connections() {
        use tokio::io::AsyncReadExt;
        let proxy = GuardProxy::start(AllowList::default(), Duration::from_secs(5)).await.unwrap();
        let extra = 10;
        let mut conns = Vec::new();
        for _ in 0..MAX_PROXY_CONNECTIONS + extra {
            conns.push(TcpStream::connect(proxy.addr).await.unwrap());
        }
        // Every connection accepted (or refused) before they are read.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut closed = 0;
        for c in &mut conns {
            let mut buf = [0u8; 1];
            // An open connection waits for a request (no answer); a refused one is closed.
            if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_millis(20), c.read(&mut buf)).await {
                closed += 1;
            }
        }
        assert_eq!(closed, extra, "connections past the cap are closed, the others held");
        conns.truncate(MAX_PROXY_CONNECTIONS - 1);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut again = TcpStream::connect(proxy.addr).await.unwrap();
        let mut buf = [0u8; 1];
        assert!(tokio::time::timeout(Duration::from_millis(300), again.read(&mut buf)).await.is_err(), "a freed slot takes a new connection");
    }
}
