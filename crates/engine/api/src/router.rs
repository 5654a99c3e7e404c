//! Method and path to one [`Route`]: the whole API surface berth serves, in one table.

use hyper::Method;

use crate::error::ApiError;

/// Query parameters, decoded; repeated keys keep every value (`names=a&names=b`).
#[derive(Debug, Default, Clone)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(q: Option<&str>) -> Self {
        Query(
            form_urlencoded::parse(q.unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Docker's booleans: `1`, `true`, `True` are true; absent, `0`, `false` and empty are false.
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some(v) if !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
    }
}

/// Every request berth understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Ping,
    Version,
    Info,
    SystemDf,
    Auth,
    ImageList,
    /// `POST /images/create`: pull (`fromImage`) or import (`fromSrc`).
    ImageCreate,
    ImageLoad,
    ImageSaveMany,
    ImagePrune,
    ImageInspect(String),
    ImageHistory(String),
    ImageSave(String),
    ImagePush(String),
    ImageTag(String),
    ImageDelete(String),
    ContainerCreate,
    ContainerList,
    ContainerPrune,
    /// `/containers/{id}/<action>` and `DELETE /containers/{id}`.
    Container(String, ContainerAction),
    ExecStart(String),
    ExecResize(String),
    ExecInspect(String),
    Events,
    /// `POST /commit?container=`.
    Commit,
    NetworkList,
    NetworkCreate,
    NetworkPrune,
    NetworkInspect(String),
    NetworkDelete(String),
    NetworkConnect(String),
    NetworkDisconnect(String),
    /// `POST /build/prune`: berth has no builder yet, so no build cache.
    BuildPrune,
    VolumeList,
    VolumeCreate,
    VolumePrune,
    VolumeInspect(String),
    VolumeDelete(String),
}

/// What is done to one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerAction {
    Inspect,
    Start,
    Stop,
    Restart,
    Kill,
    Pause,
    Unpause,
    Wait,
    Rename,
    Attach,
    Resize,
    Exec,
    Logs,
    Top,
    Stats,
    Update,
    Delete,
    Changes,
    Export,
    ArchiveGet,
    ArchiveHead,
    ArchivePut,
}

impl Route {
    /// `path` is already stripped of its version prefix.
    pub fn parse(method: &Method, path: &str) -> Result<Route, ApiError> {
        let path = path.trim_end_matches('/');
        let route = match (method, path) {
            (&Method::GET | &Method::HEAD, "/_ping") => Route::Ping,
            (&Method::GET, "/version") => Route::Version,
            (&Method::GET, "/info") => Route::Info,
            (&Method::GET, "/system/df") => Route::SystemDf,
            (&Method::POST, "/auth") => Route::Auth,
            (&Method::GET, "/images/json") => Route::ImageList,
            (&Method::POST, "/images/create") => Route::ImageCreate,
            (&Method::POST, "/images/load") => Route::ImageLoad,
            (&Method::GET, "/images/get") => Route::ImageSaveMany,
            (&Method::POST, "/images/prune") => Route::ImagePrune,
            (&Method::POST, "/containers/create") => Route::ContainerCreate,
            (&Method::GET, "/containers/json") => Route::ContainerList,
            (&Method::POST, "/containers/prune") => Route::ContainerPrune,
            (&Method::GET, "/events") => Route::Events,
            (&Method::POST, "/commit") => Route::Commit,
            (&Method::GET, "/networks") => Route::NetworkList,
            (&Method::POST, "/networks/create") => Route::NetworkCreate,
            (&Method::POST, "/networks/prune") => Route::NetworkPrune,
            (&Method::POST, "/build/prune") => Route::BuildPrune,
            (&Method::GET, "/volumes") => Route::VolumeList,
            (&Method::POST, "/volumes/create") => Route::VolumeCreate,
            (&Method::POST, "/volumes/prune") => Route::VolumePrune,
            _ if path.starts_with("/containers/") => {
                return Self::parse_container_path(method, path)
            }
            _ if path.starts_with("/exec/") => return Self::parse_exec_path(method, path),
            _ if path.starts_with("/networks/") => {
                let rest = &path["/networks/".len()..];
                let not_found = || ApiError::not_found(format!("page not found: {method} {path}"));
                match (method, rest.split_once('/')) {
                    (&Method::GET, None) if !rest.is_empty() => Route::NetworkInspect(rest.into()),
                    (&Method::DELETE, None) if !rest.is_empty() => {
                        Route::NetworkDelete(rest.into())
                    }
                    (&Method::POST, Some((id, "connect"))) => Route::NetworkConnect(id.into()),
                    (&Method::POST, Some((id, "disconnect"))) => {
                        Route::NetworkDisconnect(id.into())
                    }
                    _ => return Err(not_found()),
                }
            }
            _ if path.starts_with("/volumes/") => {
                let name = path["/volumes/".len()..].to_string();
                match *method {
                    Method::GET => Route::VolumeInspect(name),
                    Method::DELETE => Route::VolumeDelete(name),
                    _ => {
                        return Err(ApiError::not_found(format!(
                            "page not found: {method} {path}"
                        )))
                    }
                }
            }
            _ => return Self::parse_image_path(method, path),
        };
        Ok(route)
    }

    /// `/containers/{id}` and `/containers/{id}/{action}` (ids and names have no slash).
    fn parse_container_path(method: &Method, path: &str) -> Result<Route, ApiError> {
        let not_found = || ApiError::not_found(format!("page not found: {method} {path}"));
        let rest = &path["/containers/".len()..];
        let (id, action) = match rest.split_once('/') {
            Some((id, action)) => (id, action),
            None => (rest, ""),
        };
        if id.is_empty() {
            return Err(not_found());
        }
        use ContainerAction as A;
        let action = match (method, action) {
            (&Method::DELETE, "") => A::Delete,
            (&Method::GET, "json") => A::Inspect,
            (&Method::POST, "start") => A::Start,
            (&Method::POST, "stop") => A::Stop,
            (&Method::POST, "restart") => A::Restart,
            (&Method::POST, "kill") => A::Kill,
            (&Method::POST, "pause") => A::Pause,
            (&Method::POST, "unpause") => A::Unpause,
            (&Method::POST, "wait") => A::Wait,
            (&Method::POST, "rename") => A::Rename,
            (&Method::POST, "attach") => A::Attach,
            (&Method::POST, "resize") => A::Resize,
            (&Method::POST, "exec") => A::Exec,
            (&Method::POST, "update") => A::Update,
            (&Method::GET, "logs") => A::Logs,
            (&Method::GET, "top") => A::Top,
            (&Method::GET, "stats") => A::Stats,
            (&Method::GET, "changes") => A::Changes,
            (&Method::GET, "export") => A::Export,
            (&Method::GET, "archive") => A::ArchiveGet,
            (&Method::HEAD, "archive") => A::ArchiveHead,
            (&Method::PUT, "archive") => A::ArchivePut,
            _ => return Err(not_found()),
        };
        Ok(Route::Container(id.to_string(), action))
    }

    fn parse_exec_path(method: &Method, path: &str) -> Result<Route, ApiError> {
        let not_found = || ApiError::not_found(format!("page not found: {method} {path}"));
        let rest = &path["/exec/".len()..];
        let (id, action) = rest.split_once('/').ok_or_else(not_found)?;
        let id = id.to_string();
        Ok(match (method, action) {
            (&Method::POST, "start") => Route::ExecStart(id),
            (&Method::POST, "resize") => Route::ExecResize(id),
            (&Method::GET, "json") => Route::ExecInspect(id),
            _ => return Err(not_found()),
        })
    }

    /// Image names contain slashes and colons (`localhost:5000/a/b:1`), so the action is the
    /// last path segment and the name is everything between `/images/` and it.
    fn parse_image_path(method: &Method, path: &str) -> Result<Route, ApiError> {
        let not_found = || ApiError::not_found(format!("page not found: {method} {path}"));
        let Some(rest) = path.strip_prefix("/images/") else {
            return Err(not_found());
        };
        if method == Method::DELETE {
            return Ok(Route::ImageDelete(rest.to_string()));
        }
        let (name, action) = rest.rsplit_once('/').ok_or_else(not_found)?;
        if name.is_empty() {
            return Err(not_found());
        }
        let name = name.to_string();
        Ok(match (method, action) {
            (&Method::GET, "json") => Route::ImageInspect(name),
            (&Method::GET, "history") => Route::ImageHistory(name),
            (&Method::GET, "get") => Route::ImageSave(name),
            (&Method::POST, "push") => Route::ImagePush(name),
            (&Method::POST, "tag") => Route::ImageTag(name),
            _ => return Err(not_found()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_with_slashes_and_ports() {
        assert_eq!(
            Route::parse(&Method::GET, "/images/localhost:5000/a/b:1/json").unwrap(),
            Route::ImageInspect("localhost:5000/a/b:1".into())
        );
        assert_eq!(
            Route::parse(&Method::DELETE, "/images/bb:latest").unwrap(),
            Route::ImageDelete("bb:latest".into())
        );
        assert_eq!(
            Route::parse(&Method::POST, "/images/me/app/push").unwrap(),
            Route::ImagePush("me/app".into())
        );
        assert_eq!(
            Route::parse(&Method::GET, "/images/json").unwrap(),
            Route::ImageList
        );
        assert!(Route::parse(&Method::GET, "/images/bb/nope").is_err());
        assert!(Route::parse(&Method::GET, "/nothing").is_err());
        assert_eq!(
            Route::parse(&Method::POST, "/containers/web/start").unwrap(),
            Route::Container("web".into(), ContainerAction::Start)
        );
        assert_eq!(
            Route::parse(&Method::DELETE, "/containers/web").unwrap(),
            Route::Container("web".into(), ContainerAction::Delete)
        );
        assert_eq!(
            Route::parse(&Method::POST, "/containers/create").unwrap(),
            Route::ContainerCreate
        );
        assert_eq!(
            Route::parse(&Method::GET, "/exec/abc/json").unwrap(),
            Route::ExecInspect("abc".into())
        );
        assert!(Route::parse(&Method::POST, "/containers/web/nope").is_err());
    }

    #[test]
    fn query_flags_follow_docker() {
        let q = Query::parse(Some("all=1&force=false&names=a&names=b%2Fc&x="));
        assert!(q.flag("all"));
        assert!(!q.flag("force"));
        assert!(!q.flag("x"));
        assert_eq!(q.all("names"), vec!["a", "b/c"]);
    }
}
