//! The `state` document: the OCI fields with the right types in every
//! status, and the same keys from berth-runc as from runc.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{ensure, Result};
use berth_runtime_tests::runtime::skip_loudly;
use berth_runtime_tests::{conformance, runtimes, Bundle, Container, Runtime, Spec};
use serde_json::Value;

/// The OCI state fields compared between runtimes.
const KEYS: [&str; 6] = ["ociVersion", "id", "status", "pid", "bundle", "annotations"];

/// The JSON type of each of [`KEYS`] in a state document, "absent" if missing.
fn shape(state: &Value) -> BTreeMap<&'static str, &'static str> {
    KEYS.iter()
        .map(|key| {
            let kind = match &state[key] {
                Value::Null if state.get(key).is_none() => "absent",
                Value::Null => "null",
                Value::Bool(_) => "bool",
                Value::Number(_) => "number",
                Value::String(_) => "string",
                Value::Array(_) => "array",
                Value::Object(_) => "object",
            };
            (*key, kind)
        })
        .collect()
}

/// The state of a container in each status: created, running, stopped.
fn states_through_lifecycle(rt: &Runtime) -> Result<Vec<(String, Value)>> {
    let bundle = Bundle::new()?;
    let spec = bundle.share(
        Spec::new()
            .annotation("org.berth.test", "state")
            .shell("while [ ! -e /shared/stop ]; do sleep 0.05; done"),
    )?;
    bundle.write_spec(&spec)?;
    let c = Container::new(rt, &bundle, "state");
    let mut states = Vec::new();
    c.create()?.ok()?;
    states.push(("created".to_string(), c.state()?));
    c.start()?;
    c.wait_for_status("running", Duration::from_secs(5))?;
    states.push(("running".to_string(), c.state()?));
    std::fs::write(bundle.file("shared/stop"), "")?;
    c.wait_for_status("stopped", Duration::from_secs(5))?;
    states.push(("stopped".to_string(), c.state()?));

    for (status, state) in &states {
        ensure!(
            state["status"] == status.as_str(),
            "[{rt}] status {status}: {state}"
        );
        ensure!(state["id"] == c.id.as_str(), "[{rt}] {status}: id: {state}");
        ensure!(
            state["ociVersion"].is_string(),
            "[{rt}] {status}: ociVersion: {state}"
        );
        ensure!(
            state["bundle"] == bundle.path().to_string_lossy().as_ref(),
            "[{rt}] {status}: bundle must be the absolute bundle path: {state}"
        );
        ensure!(
            state["annotations"]["org.berth.test"] == "state",
            "[{rt}] {status}: annotations from the config must be in the state: {state}"
        );
        if status != "stopped" {
            ensure!(
                state["pid"].as_i64() > Some(0),
                "[{rt}] {status}: pid: {state}"
            );
        }
    }
    c.delete_and_check(false)?;
    Ok(states)
}

conformance!(state_fields_in_every_status, |rt| {
    states_through_lifecycle(rt)?;
    Ok(())
});

/// berth-runc's state has the same keys, of the same types, as runc's, in
/// each status.
#[test]
fn state_shape_matches_runc() {
    let rts = runtimes();
    if rts.len() < 2 {
        let have: Vec<&str> = rts.iter().map(|rt| rt.name).collect();
        skip_loudly(
            "berth-runc vs runc",
            "state_shape_matches_runc",
            &format!("needs both runtimes, have {have:?}"),
        );
        return;
    }
    let mut shapes = Vec::new();
    for rt in &rts {
        let states = states_through_lifecycle(rt).unwrap_or_else(|e| panic!("[{rt}] {e:#}"));
        let by_status: Vec<_> = states.iter().map(|(s, v)| (s.clone(), shape(v))).collect();
        shapes.push((rt.name, by_status));
    }
    let (first, reference) = &shapes[0];
    for (name, other) in &shapes[1..] {
        for ((status, a), (_, b)) in reference.iter().zip(other) {
            assert_eq!(
                a, b,
                "state keys/types differ in status {status:?}: [{first}] vs [{name}]"
            );
        }
    }
}
