//! Address ranges as written in `location.networks`.

use std::net::IpAddr;

use portcullis_policy::Cidr;

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a dual-stack listener reports for IPv4 clients)
/// as the IPv4 address it stands for; any other address unchanged.
pub(super) fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

/// Parses `addr/prefix` (or a single address). Host bits must be zero, so a typo like `10.1.2.3/8` is
/// caught instead of silently meaning `10.0.0.0/8`. An IPv4-mapped IPv6 range becomes the IPv4 range,
/// because addresses are looked up in their IPv4 form.
pub(super) fn parse(text: &str) -> Result<Cidr, String> {
    let hint = || {
        format!(
            "`{text}` is not an address range; write e.g. `10.0.0.0/8`, `192.0.2.7` or `fd00::/8`"
        )
    };
    let (addr, prefix) = match text.trim().split_once('/') {
        Some((a, p)) => (a.trim(), Some(p.trim())),
        None => (text.trim(), None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| hint())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) => p
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(hint)?,
    };
    let network = mask(addr, prefix);
    if network != addr {
        return Err(format!(
            "`{text}` has host bits set; did you mean `{network}/{prefix}`?"
        ));
    }
    Ok(match addr {
        IpAddr::V6(v6) if prefix >= 96 => match v6.to_ipv4_mapped() {
            Some(v4) => Cidr {
                addr: IpAddr::V4(v4),
                prefix: prefix - 96,
            },
            None => Cidr { addr, prefix },
        },
        _ => Cidr { addr, prefix },
    })
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(v4) & m).into())
        }
        IpAddr::V6(v6) => {
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & m).into())
        }
    }
}
