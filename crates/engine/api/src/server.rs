//! The accept loop: one task per connection, HTTP/1.1 with upgrades (attach, exec),
//! each request dispatched through the route table.

use std::convert::Infallible;
use std::sync::Arc;

use berth_container::ContainerService;
use berth_image::ImageService;
use berth_volume::VolumeStore;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::UnixListener;

use crate::body::{self, Body};
use crate::error::ApiError;
use crate::router::{Query, Route};
use crate::{routes, version};

/// Facts about the daemon and its host, gathered once at start for `/version` and `/info`.
#[derive(Debug, Clone)]
pub struct SystemFacts {
    pub version: String,
    pub data_root: String,
    pub hostname: String,
    pub kernel_version: String,
    pub operating_system: String,
    pub ncpu: usize,
    pub mem_total: u64,
    pub cgroup_version: String,
    pub storage_driver: String,
    pub insecure_registries: Vec<String>,
    pub daemon_id: String,
    pub runtime_name: String,
    pub runtime_path: String,
    pub init_binary: String,
}

/// What the handlers work with: the engine's services.
pub struct Backend {
    pub images: Arc<ImageService>,
    pub containers: Arc<ContainerService>,
    pub volumes: Arc<VolumeStore>,
    pub networks: Arc<berth_network::NetworkService>,
    pub facts: SystemFacts,
    pub debug: bool,
}

impl Backend {
    /// A volume event on the engine's event stream.
    pub fn emit_volume(&self, name: &str, action: &str) {
        let mut attrs = std::collections::BTreeMap::new();
        attrs.insert("driver".to_string(), "local".to_string());
        self.containers
            .events
            .publish(berth_container::events::Event::new(
                "volume", action, name, attrs,
            ));
    }
}

/// Serves the API on `listener` until `shutdown` resolves; connections in flight finish.
pub async fn serve(
    listener: UnixListener,
    backend: Arc<Backend>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    eprintln!("berth daemon: accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let backend = backend.clone();
        let debug = backend.debug;
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let backend = backend.clone();
                async move { Ok::<_, Infallible>(handle(backend, req).await) }
            });
            let conn = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades();
            if let Err(e) = conn.await {
                if debug {
                    eprintln!("berth daemon: connection: {e}");
                }
            }
        });
    }
}

/// One request: strip the version, find the route, run its handler, render errors.
pub async fn handle(backend: Arc<Backend>, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    if backend.debug {
        eprintln!("berth daemon: {method} {}", req.uri());
    }
    let result = async {
        let (_version, rest) = version::strip_prefix(&path)?;
        let route = Route::parse(&method, rest)?;
        let query = Query::parse(req.uri().query());
        routes::dispatch(&backend, route, query, req).await
    }
    .await;
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => {
            if backend.debug {
                eprintln!("berth daemon: {method} {path}: {} {}", e.status, e.message);
            }
            body::error(&e)
        }
    };
    let headers = resp.headers_mut();
    headers.insert(
        "Api-Version",
        version::format(version::MAX_VERSION)
            .parse()
            .expect("header value"),
    );
    headers.insert(
        "Server",
        format!("Berth/{} (linux)", backend.facts.version)
            .parse()
            .expect("header value"),
    );
    headers.insert("Ostype", "linux".parse().expect("header value"));
    resp
}

pub(crate) type HandlerResult = Result<Response<Body>, ApiError>;
