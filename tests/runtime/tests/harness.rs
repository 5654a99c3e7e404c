//! The harness's own checks must see a live container, or "nothing left
//! behind" would pass for a runtime that hides its state, cgroups or
//! processes somewhere the checks do not look.

use anyhow::ensure;
use berth_runtime_tests::host::leftovers;
use berth_runtime_tests::{conformance, Bundle, Container, Spec};

conformance!(leftover_check_sees_a_live_container, |rt| {
    let bundle = Bundle::new()?;
    bundle.write_spec(&Spec::new().args(&["sleep", "300"]))?;
    let c = Container::new(rt, &bundle, "harness");
    c.start_running()?;
    let found = leftovers(rt, &c.id, bundle.path());
    for kind in ["state under --root", "cgroup", "process"] {
        ensure!(
            found.iter().any(|f| f.starts_with(kind)),
            "[{rt}] a running container must show a {kind} containing its id; found {found:#?}"
        );
    }
    c.delete_and_check(true)?;
    Ok(())
});
