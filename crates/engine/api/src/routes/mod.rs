//! Handlers, one module per resource; [`dispatch`] is the only place that maps routes to them.

mod images;
mod system;

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::Request;

use crate::router::{Query, Route};
use crate::server::{Backend, HandlerResult};

pub async fn dispatch(
    backend: &Arc<Backend>,
    route: Route,
    query: Query,
    req: Request<Incoming>,
) -> HandlerResult {
    match route {
        Route::Ping => system::ping(req.method()),
        Route::Version => system::version(backend),
        Route::Info => system::info(backend).await,
        Route::SystemDf => system::disk_usage(backend).await,
        Route::Auth => system::auth(backend, req).await,
        Route::ImageList => images::list(backend, &query).await,
        Route::ImageCreate => images::create(backend, &query, req).await,
        Route::ImageLoad => images::load(backend, req).await,
        Route::ImageSaveMany => images::save(backend, query.all("names")).await,
        Route::ImagePrune => images::prune(backend, &query).await,
        Route::ImageInspect(name) => images::inspect(backend, &name).await,
        Route::ImageHistory(name) => images::history(backend, &name).await,
        Route::ImageSave(name) => images::save(backend, vec![name]).await,
        Route::ImagePush(name) => images::push(backend, &name, &query, &req),
        Route::ImageTag(name) => images::tag(backend, &name, &query).await,
        Route::ImageDelete(name) => images::remove(backend, &name, &query).await,
    }
}

/// Runs blocking store work off the async threads.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, crate::error::ApiError>
where
    F: FnOnce() -> Result<T, berth_image::ImageError> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(Into::into),
        Err(e) => Err(crate::error::ApiError::new(
            hyper::StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error: {e}"),
        )),
    }
}
