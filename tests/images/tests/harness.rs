//! The harness judged without berth: the fixtures land in a real registry in
//! the format each test expects, and the fake registry serves what it is told.
//! A failure here is the suite's, not berth's.

use anyhow::{ensure, Result};
use berth_image_tests::cmd::run;
use berth_image_tests::fixtures::{self, layout_config_digest, registry_manifest, Format};
use berth_image_tests::{digest, Delivery, FakeRegistry, OciImage, Registry, Response, TarWriter};

#[test]
fn fixtures_land_in_the_registry_in_each_format() -> Result<()> {
    let registry = Registry::open()?;
    fixtures::push(&registry, "multi", "multi:1", Format::Oci, None)?;
    let multi = registry_manifest(&registry, "multi:1")?;
    ensure!(
        multi["layers"].as_array().map(Vec::len) == Some(4),
        "multi: {multi}"
    );
    ensure!(
        multi["config"]["digest"] == layout_config_digest("multi")?.as_str(),
        "multi config: {multi}"
    );

    fixtures::push(&registry, "index", "idx:1", Format::All, None)?;
    let index = registry_manifest(&registry, "idx:1")?;
    let arches: Vec<String> = index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            m["platform"]["architecture"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    ensure!(arches == ["amd64", "arm64"], "index platforms: {index}");

    // skopeo 1.9 reuses a blob the registry already holds instead of
    // recompressing it, so zstd needs a registry that has never seen the layer.
    let fresh = Registry::open()?;
    fixtures::push(&fresh, "base", "zstd:1", Format::Zstd, None)?;
    let zstd = registry_manifest(&fresh, "zstd:1")?;
    ensure!(
        zstd["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd",
        "zstd: {zstd}"
    );
    ensure!(
        zstd["config"]["digest"] == layout_config_digest("base")?.as_str(),
        "zstd keeps the config: {zstd}"
    );

    fixtures::push(&registry, "multi", "v2s2:1", Format::V2s2, None)?;
    let v2s2 = registry_manifest(&registry, "v2s2:1")?;
    ensure!(
        v2s2["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json",
        "v2s2: {v2s2}"
    );
    ensure!(
        v2s2["config"]["digest"] == layout_config_digest("multi")?.as_str(),
        "v2s2 keeps the config: {v2s2}"
    );
    Ok(())
}

#[test]
fn fake_registry_serves_and_misbehaves_on_request() -> Result<()> {
    let fake = FakeRegistry::start()?;
    let image = OciImage::new(&[TarWriter::new().file("hello", b"hi").finish()]);
    fake.serve_image("app", "1", &image);
    let base = format!("http://{}", fake.host());
    let manifest = run("curl", &["-sf", &format!("{base}/v2/app/manifests/1")])?.ok()?;
    ensure!(
        digest(manifest.stdout.as_bytes()) == image.manifest_digest(),
        "manifest bytes served verbatim"
    );
    let layer = &image.layers[0];
    let path = format!("/v2/app/blobs/{layer}");
    fake.route(
        &path,
        Response::ok("application/octet-stream", image.blobs[layer].clone())
            .delivery(Delivery::CutAfter(10)),
    );
    let cut = run(
        "curl",
        &["-sf", "-o", "/dev/null", &format!("{base}{path}")],
    )?;
    ensure!(!cut.success(), "a cut blob is an error for curl too: {cut}");
    ensure!(
        fake.bytes_sent(&path) == 10,
        "counted {} bytes",
        fake.bytes_sent(&path)
    );
    ensure!(
        fake.requests().iter().any(|r| r == &format!("GET {path}")),
        "logged: {:?}",
        fake.requests()
    );
    // A ranged retry past the cut gets nothing more: the cut is for good.
    let resumed = run(
        "curl",
        &[
            "-sf",
            "-o",
            "/dev/null",
            "-r",
            "10-",
            &format!("{base}{path}"),
        ],
    )?;
    ensure!(
        !resumed.success() && fake.bytes_sent(&path) == 10,
        "a ranged retry stays cut: {resumed}"
    );
    // CutOnce: the first GET breaks off, the second is whole.
    let once = format!("/v2/app/blobs/{}", image.config_digest());
    fake.route(
        &once,
        Response::ok("application/json", image.config.clone()).delivery(Delivery::CutOnce(5)),
    );
    ensure!(
        !run(
            "curl",
            &["-sf", "-o", "/dev/null", &format!("{base}{once}")]
        )?
        .success(),
        "first GET cut"
    );
    let whole = run("curl", &["-sf", &format!("{base}{once}")])?.ok()?;
    ensure!(
        whole.stdout.as_bytes() == image.config.as_slice(),
        "second GET whole"
    );
    Ok(())
}
