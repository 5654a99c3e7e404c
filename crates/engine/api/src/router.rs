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
            _ => return Self::parse_image_path(method, path),
        };
        Ok(route)
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
