//! `berth daemon`: runs the daemon in this process.

use std::path::PathBuf;

use anyhow::Result;
use berth_daemon::{
    DaemonOptions, SnapshotterKind, DEFAULT_DATA_ROOT, DEFAULT_EXEC_ROOT, DEFAULT_HOST,
};

#[derive(clap::Args)]
pub struct Args {
    /// Socket to listen on (unix:///path); may be repeated
    #[arg(short = 'H', long = "host", value_name = "HOST")]
    hosts: Vec<String>,
    /// Root directory of persistent state
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_ROOT)]
    data_root: PathBuf,
    /// Registry to reach over plain HTTP or unverified TLS; may be repeated
    #[arg(long = "insecure-registry", value_name = "HOST")]
    insecure_registries: Vec<String>,
    /// Storage driver: overlayfs (overlay2), native (vfs: full copies, for file systems
    /// without overlay); default: overlayfs when the data root supports it
    #[arg(short = 's', long = "storage-driver", value_name = "DRIVER", value_parser = parse_driver)]
    storage_driver: Option<SnapshotterKind>,
    /// Root directory of running state: container monitors and the runtime's state
    #[arg(long, value_name = "DIR", default_value = DEFAULT_EXEC_ROOT)]
    exec_root: PathBuf,
    /// OCI runtime binary (runc-compatible); default: berth-runc next to berth
    #[arg(long, value_name = "PATH")]
    runtime: Option<PathBuf>,
    /// The default bridge network's address and prefix (e.g. 172.30.0.1/16); default: the
    /// first subnet of the address pools that no host route or address overlaps
    #[arg(long, value_name = "CIDR")]
    bip: Option<String>,
    /// Where new networks' subnets come from: base=CIDR,size=N; may be repeated
    #[arg(long = "default-address-pool", value_name = "POOL")]
    default_address_pools: Vec<String>,
    /// The default bridge network's interface name, or none: no default bridge network
    /// (containers without --network get none)
    #[arg(
        short = 'b',
        long = "bridge",
        value_name = "NAME",
        default_value = "berth0"
    )]
    bridge_name: String,
    /// MTU of container interfaces
    #[arg(long, value_name = "BYTES")]
    mtu: Option<u32>,
    /// Where berth's packet filtering rules go: nftables (table inet berth) or iptables
    /// (BERTH-* chains); default: nftables when `nft` works
    #[arg(long = "firewall-backend", value_name = "BACKEND")]
    firewall_backend: Option<String>,
    /// Enable debug mode
    #[arg(short = 'D', long = "debug")]
    debug: bool,
}

fn parse_driver(s: &str) -> Result<SnapshotterKind, String> {
    match s {
        "overlayfs" | "overlay2" | "overlay" => Ok(SnapshotterKind::Overlay),
        "native" | "vfs" => Ok(SnapshotterKind::Native),
        other => Err(format!(
            "unknown storage driver {other:?}: berth has overlayfs and native"
        )),
    }
}

pub fn options(args: Args, global_debug: bool) -> DaemonOptions {
    DaemonOptions {
        hosts: if args.hosts.is_empty() {
            vec![DEFAULT_HOST.to_string()]
        } else {
            args.hosts
        },
        data_root: args.data_root,
        insecure_registries: args.insecure_registries,
        storage_driver: args.storage_driver.unwrap_or(SnapshotterKind::Auto),
        debug: args.debug || global_debug,
        exec_root: args.exec_root,
        runtime: args.runtime,
        bip: args.bip,
        default_address_pools: args.default_address_pools,
        bridge_name: args.bridge_name,
        mtu: args.mtu,
        firewall_backend: args.firewall_backend,
    }
}

pub fn run(args: Args, global_debug: bool) -> Result<()> {
    berth_daemon::run(options(args, global_debug))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn flags_become_options() {
        let t = T::parse_from([
            "daemon",
            "-H",
            "unix:///tmp/a.sock",
            "--host=unix:///tmp/b.sock",
            "--data-root",
            "/tmp/d",
            "--insecure-registry",
            "r:5000",
            "-s",
            "vfs",
        ]);
        let o = options(t.args, true);
        assert_eq!(o.hosts, ["unix:///tmp/a.sock", "unix:///tmp/b.sock"]);
        assert_eq!(o.data_root, PathBuf::from("/tmp/d"));
        assert_eq!(o.insecure_registries, ["r:5000"]);
        assert_eq!(o.storage_driver, SnapshotterKind::Native);
        assert!(o.debug);
        let o = options(T::parse_from(["daemon"]).args, false);
        assert_eq!(o.hosts, [DEFAULT_HOST]);
        assert_eq!(o.data_root, PathBuf::from(DEFAULT_DATA_ROOT));
        assert_eq!(o.storage_driver, SnapshotterKind::Auto);
        assert!(!o.debug);
        assert!(T::try_parse_from(["daemon", "--storage-driver", "btrfs"]).is_err());
    }
}
