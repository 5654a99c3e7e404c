//! IP address management: which subnet a network gets, and which address each endpoint
//! gets inside it.
//!
//! Allocation state is not stored on its own: it is rebuilt from the endpoints that exist
//! (the records of running containers), so a crash can never leave an address owned by
//! nobody or by two. Addresses are handed out in turn after the last one given (as
//! Docker's allocator does), so a released address is not reused at once.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::error::{NetworkError, Result};

/// Docker's default address pools: 172.17-31.0.0/16, then 192.168.0.0/16 in /20s.
pub fn default_pools() -> Vec<Pool> {
    [
        ("172.17.0.0/16", 16),
        ("172.18.0.0/15", 16),
        ("172.20.0.0/14", 16),
        ("172.24.0.0/13", 16),
        ("192.168.0.0/16", 20),
    ]
    .into_iter()
    .map(|(base, size)| Pool {
        base: base.parse().expect("literal"),
        size,
    })
    .collect()
}

/// A range subnets are cut from: `--default-address-pool base=10.10.0.0/16,size=24`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    pub base: Ipv4Net,
    pub size: u8,
}

impl FromStr for Pool {
    type Err = NetworkError;

    /// `base=CIDR,size=N`.
    fn from_str(s: &str) -> Result<Pool> {
        let bad = |why: &str| NetworkError::Invalid(format!("address pool {s:?}: {why}"));
        let (mut base, mut size) = (None, None);
        for part in s.split(',') {
            match part.split_once('=') {
                Some(("base", v)) => {
                    base = Some(
                        v.parse::<Ipv4Net>()
                            .map_err(|_| bad("base is not an IPv4 CIDR"))?,
                    )
                }
                Some(("size", v)) => {
                    size = Some(v.parse::<u8>().map_err(|_| bad("size is not a number"))?)
                }
                _ => return Err(bad("expected base=CIDR,size=N")),
            }
        }
        let base = base.ok_or_else(|| bad("base is missing"))?.trunc();
        let size = size.ok_or_else(|| bad("size is missing"))?;
        if size < base.prefix_len() || size > 30 {
            return Err(bad("size must be between the base's prefix length and 30"));
        }
        Ok(Pool { base, size })
    }
}

/// The first subnet of the pools that overlaps none of `taken` (host routes, host
/// addresses, other networks).
pub fn pick_subnet(pools: &[Pool], taken: &[IpNet]) -> Option<Ipv4Net> {
    for pool in pools {
        let Ok(subnets) = pool.base.subnets(pool.size) else {
            continue;
        };
        for s in subnets {
            let candidate = IpNet::V4(s);
            if !taken.iter().any(|t| overlaps(t, &candidate)) {
                return Some(s);
            }
        }
    }
    None
}

pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    match (a, b) {
        (IpNet::V4(_), IpNet::V4(_)) | (IpNet::V6(_), IpNet::V6(_)) => {
            a.contains(&b.network()) || b.contains(&a.network())
        }
        _ => false,
    }
}

/// A random unique-local /64 (RFC 4193) for an IPv6 network created without a subnet.
pub fn random_ula() -> Ipv6Net {
    let mut b = [0u8; 16];
    b[0] = 0xfd;
    let r: [u8; 7] = rand_bytes();
    b[1..8].copy_from_slice(&r);
    Ipv6Net::new(Ipv6Addr::from(b), 64).expect("64 is a valid prefix")
}

pub(crate) fn rand_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // getrandom(2) on Linux; without it, the clock is unique enough for a private prefix.
    // SAFETY: out is a valid writable buffer of N bytes.
    let n = unsafe { libc::getrandom(out.as_mut_ptr().cast(), N, 0) };
    if n != N as isize {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        for (i, o) in out.iter_mut().enumerate() {
            *o = (t >> (8 * (i % 16))) as u8;
        }
    }
    out
}

/// The default gateway of a subnet: its first host address.
pub fn first_host(net: &IpNet) -> IpAddr {
    offset(net, 1)
}

fn offset(net: &IpNet, n: u128) -> IpAddr {
    match net {
        IpNet::V4(v) => IpAddr::V4(Ipv4Addr::from(u32::from(v.network()) + n as u32)),
        IpNet::V6(v) => IpAddr::V6(Ipv6Addr::from(u128::from(v.network()) + n)),
    }
}

fn index_of(net: &IpNet, ip: IpAddr) -> u128 {
    match (net, ip) {
        (IpNet::V4(v), IpAddr::V4(a)) => (u32::from(a) - u32::from(v.network())) as u128,
        (IpNet::V6(v), IpAddr::V6(a)) => u128::from(a) - u128::from(v.network()),
        _ => 0,
    }
}

/// The addresses of one subnet that endpoints may get: not the network address, not the
/// IPv4 broadcast, not the gateway; the allocations, by owner.
#[derive(Debug, Clone)]
pub struct SubnetAllocator {
    pub subnet: IpNet,
    pub gateway: IpAddr,
    owners: BTreeMap<u128, String>,
    last: u128,
}

impl SubnetAllocator {
    pub fn new(subnet: IpNet, gateway: IpAddr) -> SubnetAllocator {
        SubnetAllocator {
            subnet: subnet.trunc(),
            gateway,
            owners: BTreeMap::new(),
            last: 0,
        }
    }

    /// How many host indexes there are (capped: an IPv6 /64 is never walked to its end).
    fn size(&self) -> u128 {
        let bits = self.subnet.max_prefix_len() - self.subnet.prefix_len();
        if bits >= 64 {
            1u128 << 64
        } else {
            1u128 << bits
        }
    }

    fn usable(&self, i: u128) -> bool {
        let size = self.size();
        i != 0
            && i < size
            && !(matches!(self.subnet, IpNet::V4(_)) && i == size - 1)
            && offset(&self.subnet, i) != self.gateway
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.subnet.contains(&ip)
    }

    /// The next free address after the last one handed out, for `owner`.
    pub fn allocate(&mut self, owner: &str) -> Result<IpAddr> {
        let size = self.size();
        let start = self.last;
        let mut i = start;
        loop {
            i = (i + 1) % size;
            if self.usable(i) && !self.owners.contains_key(&i) {
                self.owners.insert(i, owner.to_string());
                self.last = i;
                return Ok(offset(&self.subnet, i));
            }
            if i == start || (start == 0 && i == size - 1) {
                return Err(NetworkError::Exhausted(self.subnet.to_string()));
            }
        }
    }

    /// A fixed address (`--ip`) for `owner`, or the address an endpoint already had when
    /// the state is rebuilt.
    pub fn reserve(&mut self, ip: IpAddr, owner: &str) -> Result<()> {
        if !self.subnet.contains(&ip) {
            return Err(NetworkError::Invalid(format!(
                "no configured subnet or ip-range contain the IP address {ip}"
            )));
        }
        let i = index_of(&self.subnet, ip);
        if !self.usable(i) {
            return Err(NetworkError::Invalid(format!(
                "Address {ip} is reserved for the network (network address, gateway or broadcast)"
            )));
        }
        match self.owners.get(&i) {
            Some(o) if o != owner => Err(NetworkError::AddressInUse(ip)),
            _ => {
                self.owners.insert(i, owner.to_string());
                Ok(())
            }
        }
    }

    pub fn release(&mut self, ip: IpAddr, owner: &str) {
        let i = index_of(&self.subnet, ip);
        if self.owners.get(&i).map(String::as_str) == Some(owner) {
            self.owners.remove(&i);
        }
    }

    pub fn owner(&self, ip: IpAddr) -> Option<&str> {
        if !self.subnet.contains(&ip) {
            return None;
        }
        self.owners
            .get(&index_of(&self.subnet, ip))
            .map(String::as_str)
    }

    pub fn in_use(&self) -> usize {
        self.owners.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn subnets_skip_what_is_taken() {
        let pools = default_pools();
        assert_eq!(
            pick_subnet(&pools, &[]).unwrap().to_string(),
            "172.17.0.0/16"
        );
        let taken = [net("172.17.5.0/24"), net("172.16.0.0/12")];
        // Everything in 172.16/12 is taken: the /20s of 192.168 come next.
        assert_eq!(
            pick_subnet(&pools, &taken).unwrap().to_string(),
            "192.168.0.0/20"
        );
        let taken = [net("172.17.0.0/16"), net("0.0.0.0/32")];
        assert_eq!(
            pick_subnet(&pools, &taken).unwrap().to_string(),
            "172.18.0.0/16"
        );
        let tiny = [Pool {
            base: "10.0.0.0/30".parse().unwrap(),
            size: 30,
        }];
        assert!(pick_subnet(&tiny, &[net("10.0.0.0/8")]).is_none());
    }

    #[test]
    fn pools_parse_as_the_daemon_flag() {
        let p: Pool = "base=10.10.0.0/16,size=24".parse().unwrap();
        assert_eq!(p.base.to_string(), "10.10.0.0/16");
        assert_eq!(p.size, 24);
        assert!("base=10.10.0.0/16,size=8".parse::<Pool>().is_err());
        assert!("base=nope,size=24".parse::<Pool>().is_err());
        assert!("size=24".parse::<Pool>().is_err());
    }

    #[test]
    fn addresses_go_in_turn_and_skip_gateway_and_broadcast() {
        let n = net("10.1.0.0/29");
        let mut a = SubnetAllocator::new(n, first_host(&n));
        let got: Vec<_> = (0..5)
            .map(|i| a.allocate(&format!("c{i}")).unwrap().to_string())
            .collect();
        assert_eq!(
            got,
            ["10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5", "10.1.0.6"]
        );
        assert!(matches!(a.allocate("c5"), Err(NetworkError::Exhausted(_))));
        a.release("10.1.0.3".parse().unwrap(), "c1");
        // Someone else's address is not released by a wrong owner.
        a.release("10.1.0.4".parse().unwrap(), "c1");
        assert_eq!(a.allocate("c6").unwrap().to_string(), "10.1.0.3");
        assert_eq!(a.in_use(), 5);
    }

    #[test]
    fn released_addresses_are_not_reused_at_once() {
        let n = net("10.1.0.0/24");
        let mut a = SubnetAllocator::new(n, first_host(&n));
        let x = a.allocate("a").unwrap();
        a.release(x, "a");
        assert_ne!(a.allocate("b").unwrap(), x);
    }

    #[test]
    fn fixed_addresses_are_checked() {
        let n = net("10.1.0.0/24");
        let mut a = SubnetAllocator::new(n, first_host(&n));
        a.reserve("10.1.0.9".parse().unwrap(), "a").unwrap();
        // The same owner again (a restart rebuilding state) is fine.
        a.reserve("10.1.0.9".parse().unwrap(), "a").unwrap();
        assert!(matches!(
            a.reserve("10.1.0.9".parse().unwrap(), "b"),
            Err(NetworkError::AddressInUse(_))
        ));
        let e = a.reserve("10.2.0.9".parse().unwrap(), "b").unwrap_err();
        assert_eq!(
            e.to_string(),
            "no configured subnet or ip-range contain the IP address 10.2.0.9"
        );
        assert!(a.reserve("10.1.0.1".parse().unwrap(), "b").is_err());
        assert!(a.reserve("10.1.0.255".parse().unwrap(), "b").is_err());
        assert_eq!(a.owner("10.1.0.9".parse().unwrap()), Some("a"));
    }

    #[test]
    fn ipv6_subnets_allocate_and_ula_is_private() {
        let n = net("fd00:1::/64");
        let mut a = SubnetAllocator::new(n, first_host(&n));
        assert_eq!(a.allocate("a").unwrap().to_string(), "fd00:1::2");
        let u = random_ula();
        assert_eq!(u.prefix_len(), 64);
        assert_eq!(u.network().octets()[0], 0xfd);
    }
}
