//! API version negotiation: clients ask `/_ping` for `API-Version`, then prefix paths with
//! `/v1.NN`. berth accepts any version from [`MIN_VERSION`] to [`MAX_VERSION`], and paths
//! without a prefix (they mean the newest).

use crate::error::ApiError;

/// The newest API version berth speaks (docker 29 refuses daemons below 1.44).
pub const MAX_VERSION: Version = (1, 47);
/// The oldest API version berth accepts.
pub const MIN_VERSION: Version = (1, 24);

pub fn format(v: Version) -> String {
    format!("{}.{}", v.0, v.1)
}

/// An API version as (major, minor).
pub type Version = (u32, u32);

/// Splits `/v1.44/images/json` into the version and `/images/json`.
pub fn strip_prefix(path: &str) -> Result<(Option<Version>, &str), ApiError> {
    let Some(rest) = path.strip_prefix("/v") else {
        return Ok((None, path));
    };
    let (ver, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let Some((major, minor)) = ver.split_once('.') else {
        return Ok((None, path));
    };
    let (Ok(major), Ok(minor)) = (major.parse::<u32>(), minor.parse::<u32>()) else {
        return Ok((None, path));
    };
    let v = (major, minor);
    if v > MAX_VERSION {
        return Err(ApiError::bad_request(format!(
            "client version {} is too new. Maximum supported API version is {}",
            format(v),
            format(MAX_VERSION)
        )));
    }
    if v < MIN_VERSION {
        return Err(ApiError::bad_request(format!(
            "client version {} is too old. Minimum supported API version is {}, please upgrade your client to a newer version",
            format(v),
            format(MIN_VERSION)
        )));
    }
    Ok((Some(v), tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_supported_prefixes() {
        assert_eq!(
            strip_prefix("/v1.44/images/json").unwrap(),
            (Some((1, 44)), "/images/json")
        );
        assert_eq!(
            strip_prefix("/v1.24/_ping").unwrap(),
            (Some((1, 24)), "/_ping")
        );
        assert_eq!(strip_prefix("/_ping").unwrap(), (None, "/_ping"));
        assert_eq!(strip_prefix("/volumes").unwrap(), (None, "/volumes"));
    }

    #[test]
    fn refuses_versions_out_of_range() {
        let e = strip_prefix("/v1.99/info").unwrap_err();
        assert!(e.message.contains("too new"), "{}", e.message);
        let e = strip_prefix("/v1.12/info").unwrap_err();
        assert!(e.message.contains("too old"), "{}", e.message);
    }
}
