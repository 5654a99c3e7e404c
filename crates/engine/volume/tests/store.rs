//! The store through its public API: names, create, list, references, remove, prune, usage,
//! restart and crash leftovers.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use berth_core::{ErrorKind, HasKind};
use berth_volume::{ListFilters, PruneFilters, VolumeError, VolumeStore, ANONYMOUS_LABEL};
use common::{args, map, none, tmpfs, Scratch};

fn list_names(store: &VolumeStore, filters: &[(&str, &[&str])]) -> Vec<String> {
    let f = ListFilters::from_args(&args(filters)).unwrap();
    store.list(&f).volumes.into_iter().map(|v| v.name).collect()
}

fn prune(store: &VolumeStore, filters: &[(&str, &[&str])]) -> (Vec<String>, u64) {
    let r = store.prune(&PruneFilters::from_args(&args(filters)).unwrap());
    let mut deleted = r.volumes_deleted;
    deleted.sort();
    (deleted, r.space_reclaimed)
}

#[test]
fn create_makes_a_docker_layout_volume() {
    let s = Scratch::new();
    let store = s.open();
    let labels = map(&[("app", "web")]);
    let v = store
        .create(Some("data"), None, none(), labels.clone())
        .unwrap();
    assert_eq!(v.name, "data");
    assert_eq!(v.driver, "local");
    assert_eq!(v.scope, "local");
    assert_eq!(v.mountpoint, s.root().join("data/_data"));
    assert_eq!(v.labels, labels);
    assert!(v.options.is_empty());
    assert!(!v.anonymous);
    let mode = fs::metadata(&v.mountpoint).unwrap().permissions().mode();
    assert!(fs::metadata(&v.mountpoint).unwrap().is_dir());
    assert_eq!(mode & 0o7777, 0o755);
    // 2026-11-23T14:29:07Z
    let c = v.created_at.as_bytes();
    assert_eq!(c.len(), 20, "{}", v.created_at);
    assert!(v.created_at.ends_with('Z') && c[4] == b'-' && c[10] == b'T' && c[13] == b':');
    assert!(s.root().join("data/volume.json").is_file());
    assert_eq!(store.get("data").unwrap(), v);
    // Nothing temporary is left next to it.
    let mut entries: Vec<String> = fs::read_dir(s.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    entries.sort();
    assert_eq!(entries, [".lock", "data"]);
}

#[test]
fn names_are_checked_with_dockers_message() {
    let s = Scratch::new();
    let store = s.open();
    for bad in ["a b", "../x", "/srv/data", ".hidden", "-x", "x/y", "a"] {
        let e = store.create(Some(bad), None, none(), none()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{bad}");
        assert!(matches!(e, VolumeError::InvalidName { .. }), "{bad}");
    }
    let e = store
        .create(Some("my vol"), None, none(), none())
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "create my vol: \"my vol\" includes invalid characters for a local volume name, only \
         \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, \
         use absolute path"
    );
    let e = store.create(Some("a"), None, none(), none()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "create a: volume name is too short, names should be at least two alphanumeric characters"
    );
    assert!(store.list(&ListFilters::default()).volumes.is_empty());
    // Nothing was made for them, not even outside the root.
    assert!(!s.path().join("x").exists());
}

#[test]
fn create_is_idempotent_like_docker() {
    let s = Scratch::new();
    let store = s.open();
    let first = store
        .create(Some("db"), None, none(), map(&[("v", "1")]))
        .unwrap();
    fs::write(first.mountpoint.join("file"), b"kept").unwrap();
    let again = store
        .create(Some("db"), Some("local"), tmpfs(), map(&[("v", "2")]))
        .unwrap();
    assert_eq!(again, first, "the existing volume is returned unchanged");
    assert_eq!(fs::read(first.mountpoint.join("file")).unwrap(), b"kept");
    assert_eq!(store.list(&ListFilters::default()).volumes.len(), 1);
}

#[test]
fn only_the_local_driver_exists() {
    let s = Scratch::new();
    let store = s.open();
    let e = store
        .create(Some("v1"), Some("flocker"), none(), none())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(
        e.to_string(),
        "create v1: error looking up volume plugin flocker: plugin \"flocker\" not found"
    );
    store
        .create(Some("v1"), Some("local"), none(), none())
        .unwrap();
    store.create(Some("v2"), Some(""), none(), none()).unwrap();
    // Docker looks the driver up before it finds the existing volume.
    let e = store
        .create(Some("v1"), Some("flocker"), none(), none())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

#[test]
fn anonymous_volumes_get_a_random_name_and_the_label() {
    let s = Scratch::new();
    let store = s.open();
    let a = store
        .create(None, None, none(), map(&[("x", "y")]))
        .unwrap();
    let b = store.create(Some(""), None, none(), none()).unwrap();
    for v in [&a, &b] {
        assert_eq!(v.name.len(), 64);
        assert!(v.name.bytes().all(|c| c.is_ascii_hexdigit()));
        assert!(v.anonymous);
        assert_eq!(v.labels.get(ANONYMOUS_LABEL).map(String::as_str), Some(""));
        assert!(v.mountpoint.is_dir());
    }
    assert_eq!(a.labels.get("x").map(String::as_str), Some("y"));
    assert_ne!(a.name, b.name);
    // Anonymity survives a restart (it is the label).
    drop(store);
    let store = s.open();
    assert!(store.get(&a.name).unwrap().anonymous);
}

#[test]
fn options_are_validated_on_create() {
    let s = Scratch::new();
    let store = s.open();
    let e = store
        .create(
            Some("v1"),
            None,
            map(&[("type", "tmpfs"), ("device", "tmpfs"), ("size", "1m")]),
            none(),
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert_eq!(e.to_string(), "create v1: invalid option key: \"size\"");
    let e = store
        .create(Some("v1"), None, map(&[("o", "bind")]), none())
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "create v1: missing required option: \"device\""
    );
    assert!(store.get("v1").is_err());
    assert!(!s.root().join("v1").exists());
    let v = store
        .create(
            Some("v1"),
            None,
            map(&[("type", "tmpfs"), ("device", "tmpfs"), ("o", "size=1m")]),
            none(),
        )
        .unwrap();
    assert_eq!(v.options.get("o").map(String::as_str), Some("size=1m"));
}

#[test]
fn list_filters_select_like_docker() {
    let s = Scratch::new();
    let store = s.open();
    store
        .create(
            Some("web-data"),
            None,
            none(),
            map(&[("tier", "front"), ("env", "prod")]),
        )
        .unwrap();
    store
        .create(Some("web-logs"), None, none(), map(&[("tier", "front")]))
        .unwrap();
    store
        .create(
            Some("db"),
            None,
            none(),
            map(&[("tier", "back"), ("env", "prod")]),
        )
        .unwrap();
    store.add_ref("db", "c1").unwrap();

    assert_eq!(list_names(&store, &[]), ["db", "web-data", "web-logs"]);
    assert_eq!(
        list_names(&store, &[("name", &["web"])]),
        ["web-data", "web-logs"]
    );
    assert_eq!(
        list_names(&store, &[("name", &["logs", "db"])]),
        ["db", "web-logs"]
    );
    assert_eq!(list_names(&store, &[("driver", &["local"])]).len(), 3);
    assert!(list_names(&store, &[("driver", &["nfs"])]).is_empty());
    assert_eq!(
        list_names(&store, &[("label", &["env"])]),
        ["db", "web-data"]
    );
    assert_eq!(
        list_names(&store, &[("label", &["tier=front"])]),
        ["web-data", "web-logs"]
    );
    assert_eq!(
        list_names(&store, &[("label", &["tier=front", "env=prod"])]),
        ["web-data"]
    );
    assert_eq!(
        list_names(&store, &[("dangling", &["true"])]),
        ["web-data", "web-logs"]
    );
    assert_eq!(list_names(&store, &[("dangling", &["0"])]), ["db"]);
    assert_eq!(
        list_names(
            &store,
            &[("dangling", &["false"]), ("label", &["env=prod"])]
        ),
        ["db"]
    );
    store.remove_ref("db", "c1").unwrap();
    assert_eq!(list_names(&store, &[("dangling", &["true"])]).len(), 3);
    assert!(store.list(&ListFilters::default()).warnings.is_empty());

    let e = ListFilters::from_args(&BTreeMap::from([("bogus".to_string(), vec![])])).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn a_volume_in_use_cannot_be_removed() {
    let s = Scratch::new();
    let store = s.open();
    let v = store.create(Some("shared"), None, none(), none()).unwrap();
    fs::write(v.mountpoint.join("f"), b"x").unwrap();
    store.add_ref("shared", "bbbb").unwrap();
    store.add_ref("shared", "aaaa").unwrap();
    store.add_ref("shared", "aaaa").unwrap();
    assert_eq!(store.refs("shared").unwrap(), ["aaaa", "bbbb"]);
    for force in [false, true] {
        let e = store.remove("shared", force).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert_eq!(
            e.to_string(),
            "remove shared: volume is in use - [aaaa, bbbb]"
        );
    }
    store.remove_ref("shared", "aaaa").unwrap();
    store.remove_ref("shared", "nobody").unwrap();
    let e = store.remove("shared", false).unwrap_err();
    assert_eq!(e.to_string(), "remove shared: volume is in use - [bbbb]");
    store.remove_ref("shared", "bbbb").unwrap();
    store.remove("shared", false).unwrap();
    assert!(!s.root().join("shared").exists());
    assert!(fs::read_dir(s.root()).unwrap().all(|e| {
        let n = e.unwrap().file_name();
        n == ".lock"
    }));

    let e = store.get("shared").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(e.to_string(), "get shared: no such volume");
    let e = store.remove("shared", false).unwrap_err();
    assert_eq!(e.to_string(), "get shared: no such volume");
    store.remove("shared", true).unwrap();
    assert_eq!(
        store.add_ref("shared", "c").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        store.refs("shared").unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn removal_never_follows_symlinks_out_of_the_volume() {
    let s = Scratch::new();
    let outside = s.path().join("outside");
    fs::create_dir_all(outside.join("sub")).unwrap();
    fs::write(outside.join("sub/precious"), b"keep me").unwrap();
    let store = s.open();
    let v = store.create(Some("evil"), None, none(), none()).unwrap();
    std::os::unix::fs::symlink(&outside, v.mountpoint.join("link")).unwrap();
    std::os::unix::fs::symlink("../../../outside/sub", v.mountpoint.join("rel")).unwrap();
    fs::create_dir(v.mountpoint.join("d")).unwrap();
    std::os::unix::fs::symlink("/", v.mountpoint.join("d/root")).unwrap();
    store.remove("evil", false).unwrap();
    assert_eq!(fs::read(outside.join("sub/precious")).unwrap(), b"keep me");
}

#[test]
fn prune_removes_unreferenced_anonymous_volumes_by_default() {
    let s = Scratch::new();
    let store = s.open();
    let anon = store.create(None, None, none(), none()).unwrap();
    fs::write(anon.mountpoint.join("f"), vec![1u8; 3000]).unwrap();
    let anon_used = store.create(None, None, none(), none()).unwrap();
    store.add_ref(&anon_used.name, "c1").unwrap();
    let anon_keep = store
        .create(None, None, none(), map(&[("keep", "yes")]))
        .unwrap();
    let named = store
        .create(Some("named"), None, none(), map(&[("team", "a")]))
        .unwrap();
    fs::write(named.mountpoint.join("g"), vec![1u8; 100]).unwrap();
    store
        .create(Some("named-b"), None, none(), map(&[("team", "b")]))
        .unwrap();
    store.create(Some("tmp"), None, tmpfs(), none()).unwrap();
    store.create(Some("mounted"), None, none(), none()).unwrap();
    store.mount("mounted", "m1").unwrap();

    // label! keeps what carries the label.
    let (deleted, space) = prune(&store, &[("label!", &["keep=yes"])]);
    assert_eq!(deleted, [anon.name.as_str()]);
    assert_eq!(space, 3000);
    assert!(!anon.mountpoint.exists());

    // By default named volumes stay.
    let (deleted, _) = prune(&store, &[]);
    assert_eq!(deleted, [anon_keep.name.as_str()]);
    assert!(store.get("named").is_ok());

    // all=true takes named ones, restricted by label.
    let (deleted, space) = prune(&store, &[("all", &["true"]), ("label", &["team=a"])]);
    assert_eq!(deleted, ["named"]);
    assert_eq!(space, 100);

    // Referenced, mounted and option volumes are never pruned.
    let (deleted, _) = prune(&store, &[("all", &["1"])]);
    assert_eq!(deleted, ["named-b"]);
    let mut left = list_names(&store, &[]);
    left.sort();
    let mut expect = vec![
        anon_used.name.clone(),
        "mounted".to_string(),
        "tmp".to_string(),
    ];
    expect.sort();
    assert_eq!(left, expect);

    store.unmount("mounted", "m1").unwrap();
    store.remove_ref(&anon_used.name, "c1").unwrap();
    let (deleted, _) = prune(&store, &[("all", &["true"])]);
    assert_eq!(deleted.len(), 2);
    assert_eq!(list_names(&store, &[]), ["tmp"]);
}

#[test]
fn usage_counts_apparent_bytes_and_hard_links_once() {
    let s = Scratch::new();
    let store = s.open();
    let v = store.create(Some("sized"), None, none(), none()).unwrap();
    assert_eq!(store.usage("sized").unwrap(), 0);
    let d = &v.mountpoint;
    fs::create_dir_all(d.join("a/b")).unwrap();
    fs::write(d.join("a/b/big"), vec![7u8; 10_000]).unwrap();
    fs::hard_link(d.join("a/b/big"), d.join("a/again")).unwrap();
    fs::hard_link(d.join("a/b/big"), d.join("third")).unwrap();
    fs::write(d.join("small"), b"12345").unwrap();
    std::os::unix::fs::symlink("/usr/share", d.join("link")).unwrap();
    assert_eq!(
        store.usage("sized").unwrap(),
        10_000 + 5 + "/usr/share".len() as u64
    );
    assert_eq!(store.usage("nope").unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn volumes_survive_a_restart_and_references_do_not() {
    let s = Scratch::new();
    let store = s.open();
    let v = store
        .create(Some("keep"), None, tmpfs(), map(&[("a", "b")]))
        .unwrap();
    store.add_ref("keep", "c1").unwrap();
    // A second store on the same root is refused while the first is open.
    let e = VolumeStore::open(&s.root()).err().expect("locked");
    assert!(matches!(e, VolumeError::Locked { .. }), "{e}");
    drop(store);
    let store = s.open();
    assert_eq!(store.get("keep").unwrap(), v);
    assert!(
        store.refs("keep").unwrap().is_empty(),
        "references are in memory only"
    );
    assert_eq!(list_names(&store, &[("dangling", &["true"])]), ["keep"]);
}

#[test]
fn opening_finishes_what_a_crash_left() {
    let s = Scratch::new();
    let root = s.root();
    drop(s.open());
    // A create cut short before its rename.
    fs::create_dir_all(root.join(".tmp-0123abcd/_data/sub")).unwrap();
    fs::write(root.join(".tmp-0123abcd/_data/sub/f"), b"partial").unwrap();
    // A remove cut short after its rename.
    fs::create_dir_all(root.join(".trash-deadbeef/_data")).unwrap();
    fs::write(root.join(".trash-deadbeef/_data/f"), b"old").unwrap();
    // A volume directory without metadata (a Docker volumes dir, a restored backup).
    fs::create_dir_all(root.join("from-docker/_data")).unwrap();
    fs::write(root.join("from-docker/_data/f"), b"data").unwrap();
    // An empty directory with neither metadata nor _data.
    fs::create_dir(root.join("empty")).unwrap();
    // A metadata write cut short inside a good volume.
    let store = s.open();
    store
        .create(Some("good"), None, none(), map(&[("l", "1")]))
        .unwrap();
    drop(store);
    fs::write(root.join("good/volume.json.tmp"), b"{\"name\": \"go").unwrap();
    // Things it cannot make sense of stay and are reported.
    fs::create_dir_all(root.join("broken/_data")).unwrap();
    fs::write(root.join("broken/volume.json"), b"not json").unwrap();
    fs::write(root.join("metadata.db"), b"bolt").unwrap();
    fs::create_dir_all(root.join("odd/stuff")).unwrap();

    let store = s.open();
    assert!(!root.join(".tmp-0123abcd").exists());
    assert!(!root.join(".trash-deadbeef").exists());
    assert!(!root.join("empty").exists());
    assert!(!root.join("good/volume.json.tmp").exists());
    assert_eq!(store.get("good").unwrap().labels, map(&[("l", "1")]));
    let adopted = store.get("from-docker").unwrap();
    assert!(adopted.labels.is_empty() && adopted.options.is_empty() && !adopted.anonymous);
    assert_eq!(fs::read(adopted.mountpoint.join("f")).unwrap(), b"data");
    assert!(root.join("from-docker/volume.json").is_file());

    let list = store.list(&ListFilters::default());
    let names: Vec<&str> = list.volumes.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["from-docker", "good"]);
    assert_eq!(list.warnings.len(), 3, "{:?}", list.warnings);
    for w in ["broken", "metadata.db", "odd"] {
        assert!(
            list.warnings.iter().any(|x| x.contains(w)),
            "{w}: {:?}",
            list.warnings
        );
    }
    assert_eq!(
        fs::read(root.join("broken/volume.json")).unwrap(),
        b"not json"
    );
    assert!(root.join("odd/stuff").is_dir());
    // The broken one's name is not silently reused.
    let e = store
        .create(Some("broken"), None, none(), none())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
    assert!(root.join("broken/_data").is_dir());
}

#[test]
fn the_store_is_shared_across_threads() {
    let s = Scratch::new();
    let store = Arc::new(s.open());
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                let v = store.create(Some("same"), None, none(), none()).unwrap();
                store.add_ref("same", &format!("c{i}")).unwrap();
                let own = store
                    .create(Some(&format!("own{i}")), None, none(), none())
                    .unwrap();
                store.remove(&own.name, false).unwrap();
                v
            })
        })
        .collect();
    let volumes: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(volumes.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(store.refs("same").unwrap().len(), 8);
    assert_eq!(list_names(&store, &[]), ["same"]);
}
