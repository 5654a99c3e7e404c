//! `pause` and `resume`: a frozen container stops making progress and picks
//! up where it left off.

use std::time::Duration;

use anyhow::{ensure, Result};
use berth_runtime_tests::host::wait_until;
use berth_runtime_tests::{conformance, Bundle, Container, Spec};

/// The counter the container writes to /shared/count every 50 ms.
fn count(bundle: &Bundle) -> Result<u64> {
    Ok(bundle
        .read("shared/count")
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or(0))
}

conformance!(pause_and_resume, |rt| {
    let bundle = Bundle::new()?;
    let counter = "i=0; while true; do i=$((i+1)); echo $i > /shared/c.tmp; \
                   mv /shared/c.tmp /shared/count; sleep 0.05; done";
    bundle.write_spec(&bundle.share(Spec::new().shell(counter))?)?;
    let c = Container::new(rt, &bundle, "pause");
    c.start_running()?;
    ensure!(
        wait_until(Duration::from_secs(5), || Ok(count(&bundle)? > 2))?,
        "[{rt}] the counter never ran"
    );

    c.command("pause")?.ok()?;
    ensure!(
        c.status()? == "paused",
        "[{rt}] state after pause: {}",
        c.state()?
    );
    // Let a write that was in flight land, then watch for progress.
    std::thread::sleep(Duration::from_millis(150));
    let frozen = count(&bundle)?;
    std::thread::sleep(Duration::from_millis(500));
    let later = count(&bundle)?;
    ensure!(
        later == frozen,
        "[{rt}] a paused container kept counting: {frozen} -> {later}"
    );

    c.command("resume")?.ok()?;
    ensure!(
        c.status()? == "running",
        "[{rt}] state after resume: {}",
        c.state()?
    );
    let moved = wait_until(Duration::from_secs(5), || Ok(count(&bundle)? > later + 2))?;
    ensure!(
        moved,
        "[{rt}] a resumed container did not count on from {later}"
    );
    c.delete_and_check(true)?;
    Ok(())
});

conformance!(delete_force_paused, |rt| {
    let bundle = Bundle::new()?;
    bundle.write_spec(&Spec::new().args(&["sleep", "300"]))?;
    let c = Container::new(rt, &bundle, "delpaused");
    c.start_running()?;
    c.command("pause")?.ok()?;
    ensure!(
        c.status()? == "paused",
        "[{rt}] state after pause: {}",
        c.state()?
    );
    c.delete_and_check(true)?;
    Ok(())
});
