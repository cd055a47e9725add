//! The network state a checkpoint keeps beside its layer of files. A chain
//! that leaves a bridge with an address (the book's `br0`), nftables rules
//! or forwarding turned on is kept all the same: what `ip` and `nft` report
//! at the end of the chain is written down, and made again in the next
//! sandbox before its first step. What cannot be made again from a
//! description (a veth pair, a tunnel, a route, legacy iptables tables) still
//! makes the chain replay, and the reason names it.
//!
//! Both ends run inside the sandbox, as its root: the host's root never runs
//! what a recipe could have named.

use serde::{Deserialize, Serialize};

/// What the inspection script prints, section by section.
pub const INSPECT: &str = "\
echo '== links'; ip -j -d link show
echo '== addresses'; ip -j address show
echo '== routes'; ip -j route show table all
echo '== routes6'; ip -j -6 route show table all 2>/dev/null
echo '== rules'; ip -j rule show
echo '== rules6'; ip -j -6 rule show 2>/dev/null
echo '== nft'; if command -v nft >/dev/null; then nft list ruleset 2>&1; fi
echo '== iptables'; cat /proc/net/ip_tables_names /proc/net/ip6_tables_names 2>/dev/null
echo '== forwarding'; cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv6/conf/all/forwarding 2>/dev/null
true
";

/// The routing rules every network namespace starts with (priority,
/// table); IPv6 has the first two.
const DEFAULT_RULES: [(u32, &str); 3] = [(0, "local"), (32766, "main"), (32767, "default")];

/// Whether `ip -batch` reads a link's name back as it is: no comment sign,
/// no quotes, nothing but what interface names usually hold.
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-@".contains(&b))
}

/// Kinds of link that `ip link add NAME type KIND` makes again as they were
/// (with their MTU, master, addresses and state).
const RECREATED_KINDS: [&str; 2] = ["bridge", "dummy"];

/// The network of a sandbox, as a checkpoint keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// The links made again, by name (for the report).
    pub links: Vec<String>,
    /// `ip -batch` commands, in order.
    pub ip: Vec<String>,
    /// `nft list ruleset`, when not empty.
    pub nft: Option<String>,
    /// IPv4 and IPv6 forwarding turned on.
    pub forward_v4: bool,
    pub forward_v6: bool,
}

impl Network {
    /// Whether there is nothing to make again (a fresh sandbox's network).
    pub fn is_empty(&self) -> bool {
        self.ip.is_empty() && self.nft.is_none() && !self.forward_v4 && !self.forward_v6
    }

    /// What the report says was kept: `br0, nftables rules, forwarding`.
    pub fn summary(&self) -> String {
        let mut parts = self.links.clone();
        if self.nft.is_some() {
            parts.push("nftables rules".into());
        }
        if self.forward_v4 || self.forward_v6 {
            parts.push("forwarding".into());
        }
        parts.join(", ")
    }

    /// `sh -c` script that turns forwarding on, if it was.
    pub fn sysctl_script(&self) -> Option<String> {
        let mut lines = Vec::new();
        if self.forward_v4 {
            lines.push("echo 1 > /proc/sys/net/ipv4/ip_forward");
        }
        if self.forward_v6 {
            lines.push("echo 1 > /proc/sys/net/ipv6/conf/all/forwarding");
        }
        (!lines.is_empty()).then(|| lines.join("\n"))
    }
}

#[derive(Deserialize)]
struct Link {
    ifname: String,
    #[serde(default)]
    flags: Vec<String>,
    #[serde(default)]
    mtu: Option<u32>,
    #[serde(default)]
    master: Option<String>,
    #[serde(default)]
    linkinfo: Option<LinkInfo>,
}

#[derive(Deserialize)]
struct LinkInfo {
    #[serde(default)]
    info_kind: Option<String>,
}

#[derive(Deserialize)]
struct Addresses {
    ifname: String,
    #[serde(default)]
    addr_info: Vec<Address>,
}

#[derive(Deserialize)]
struct Address {
    family: String,
    local: String,
    prefixlen: u8,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    broadcast: Option<String>,
}

#[derive(Deserialize)]
struct Route {
    dst: String,
    #[serde(default)]
    table: Option<String>,
    #[serde(default)]
    protocol: Option<String>,
    #[serde(default)]
    gateway: Option<String>,
    #[serde(default)]
    dev: Option<String>,
}

#[derive(Deserialize)]
struct Rule {
    priority: u32,
    #[serde(default)]
    table: Option<String>,
    #[serde(flatten)]
    rest: std::collections::BTreeMap<String, serde_json::Value>,
}

impl Rule {
    /// One of the rules a fresh namespace has, unchanged.
    fn is_default(&self) -> bool {
        let selectors_all = self.rest.iter().all(|(k, v)| k == "src" && v == "all");
        selectors_all
            && DEFAULT_RULES
                .iter()
                .any(|(p, t)| *p == self.priority && self.table.as_deref() == Some(*t))
    }
}

/// The sections of the inspection script's output, by name.
fn sections(report: &str) -> impl Iterator<Item = (&str, &str)> {
    report.split("== ").skip(1).map(|section| {
        let (name, body) = section.split_once('\n').unwrap_or((section, ""));
        (name.trim(), body.trim())
    })
}

/// Why a sandbox's network cannot be kept in a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// A section of the report that is not `ip -j` output.
    #[error("cannot read `ip -j` on {section}: {source}")]
    Json {
        section: String,
        source: serde_json::Error,
    },
    #[error("cannot inspect its network (`ip -j link show` listed no loopback)")]
    NoLoopback,
    /// Each thing a description cannot make again, named.
    #[error(
        "it leaves network state a checkpoint cannot make again ({})",
        .0.join(", ")
    )]
    Unkept(Vec<String>),
}

/// `ip -j` output: an empty report is an empty list.
fn json<T: for<'de> Deserialize<'de>>(section: &str, body: &str) -> Result<Vec<T>, NetworkError> {
    if body.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_str(body).map_err(|source| NetworkError::Json {
        section: section.to_string(),
        source,
    })
}

/// Reads what [`INSPECT`] printed: the network to make again, or why it
/// cannot be (each thing a description cannot make again, named).
pub fn read(report: &str) -> Result<Network, NetworkError> {
    let mut reading = Reading::default();
    for (name, body) in sections(report) {
        match name {
            "links" => reading.links(json(name, body)?),
            "addresses" => reading.addresses(json(name, body)?),
            "routes" | "routes6" => reading.routes(json(name, body)?),
            "rules" | "rules6" => reading.rules(json(name, body)?),
            "nft" => reading.nft(body),
            "iptables" => reading.iptables(body),
            "forwarding" => reading.forwarding(body),
            _ => {}
        }
    }
    reading.finish()
}

/// What [`read`] learnt so far, section by section.
#[derive(Default)]
struct Reading {
    net: Network,
    /// What a description cannot make again.
    cannot: Vec<String>,
    /// `ip` commands that come after every link exists: masters, then up.
    masters: Vec<String>,
    up: Vec<String>,
    /// The links made again, by name.
    recreated: std::collections::BTreeSet<String>,
    seen_lo: bool,
}

impl Reading {
    /// `ip -j link`: links of the kinds made again, with their MTU, master
    /// and state.
    fn links(&mut self, links: Vec<Link>) {
        for link in links {
            if link.ifname == "lo" {
                self.seen_lo = true;
                continue;
            }
            let kind = link.linkinfo.and_then(|i| i.info_kind);
            if !plain_name(&link.ifname) {
                self.cannot.push(format!("a link named {:?}", link.ifname));
                continue;
            }
            if let Some(master) = link.master.as_deref().filter(|m| !plain_name(m)) {
                self.cannot.push(format!("a link named {master:?}"));
                continue;
            }
            match kind.as_deref() {
                Some(kind) if RECREATED_KINDS.contains(&kind) => {
                    let ip = &mut self.net.ip;
                    ip.push(format!("link add name {} type {kind}", link.ifname));
                    if let Some(mtu) = link.mtu.filter(|m| *m != 1500) {
                        ip.push(format!("link set dev {} mtu {mtu}", link.ifname));
                    }
                    if let Some(master) = link.master {
                        self.masters
                            .push(format!("link set dev {} master {master}", link.ifname));
                    }
                    if link.flags.iter().any(|f| f == "UP") {
                        self.up.push(format!("link set dev {} up", link.ifname));
                    }
                    self.net.links.push(link.ifname.clone());
                    self.recreated.insert(link.ifname);
                }
                Some(kind) => self.cannot.push(format!("{} ({kind})", link.ifname)),
                None => self.cannot.push(link.ifname),
            }
        }
    }

    /// `ip -j address`: the addresses of the links made again; on `lo`,
    /// only its own.
    fn addresses(&mut self, entries: Vec<Addresses>) {
        for entry in entries {
            if entry.ifname == "lo" {
                for a in &entry.addr_info {
                    let own = (a.local == "127.0.0.1" && a.prefixlen == 8)
                        || (a.local == "::1" && a.prefixlen == 128);
                    if !own {
                        self.cannot
                            .push(format!("the address {}/{} on lo", a.local, a.prefixlen));
                    }
                }
                continue;
            }
            if !self.recreated.contains(&entry.ifname) {
                continue;
            }
            for a in entry.addr_info {
                // The kernel makes IPv6 link-local addresses itself.
                if a.family == "inet6" && a.scope.as_deref() == Some("link") {
                    continue;
                }
                let broadcast = a
                    .broadcast
                    .map(|b| format!(" broadcast {b}"))
                    .unwrap_or_default();
                self.net.ip.push(format!(
                    "address add {}/{}{broadcast} dev {}",
                    a.local, a.prefixlen, entry.ifname
                ));
            }
        }
    }

    /// `ip -j route`: any route but those the kernel adds is not kept.
    fn routes(&mut self, routes: Vec<Route>) {
        for route in routes {
            // Routes to the links' own networks come with their addresses.
            if route.protocol.as_deref() == Some("kernel") {
                continue;
            }
            let via = route
                .gateway
                .map(|g| format!(" via {g}"))
                .unwrap_or_default();
            let dev = route.dev.map(|d| format!(" dev {d}")).unwrap_or_default();
            let table = route
                .table
                .filter(|t| t != "main")
                .map(|t| format!(" table {t}"))
                .unwrap_or_default();
            self.cannot
                .push(format!("the route {}{via}{dev}{table}", route.dst));
        }
    }

    /// `ip -j rule`: only the default rules.
    fn rules(&mut self, rules: Vec<Rule>) {
        for rule in rules.iter().filter(|r| !r.is_default()) {
            self.cannot
                .push(format!("the routing rule of priority {}", rule.priority));
        }
    }

    /// `nft list ruleset`, kept as it is, unless iptables-nft made it.
    fn nft(&mut self, body: &str) {
        // iptables-nft's tables hold xtables expressions that nft lists
        // but cannot load back, and it says so in a warning.
        if body.contains("managed by iptables-nft")
            || body.starts_with("Error:")
            || body.contains("\nError:")
        {
            self.cannot
                .push("nftables rules made by iptables, which nft cannot load back".into());
        } else if !body.is_empty() {
            self.net.nft = Some(format!("{body}\n"));
        }
    }

    /// Legacy iptables tables in use: not kept.
    fn iptables(&mut self, body: &str) {
        if !body.is_empty() {
            self.cannot.push(format!(
                "legacy iptables tables ({})",
                body.split_whitespace().collect::<Vec<_>>().join(", ")
            ));
        }
    }

    /// IPv4 then IPv6 forwarding, `0` or `1`.
    fn forwarding(&mut self, body: &str) {
        let mut values = body.lines().map(str::trim);
        self.net.forward_v4 = values.next() == Some("1");
        self.net.forward_v6 = values.next() == Some("1");
    }

    fn finish(mut self) -> Result<Network, NetworkError> {
        if !self.seen_lo {
            return Err(NetworkError::NoLoopback);
        }
        // `ip route show table all` lists IPv6 routes too on some versions.
        let mut seen = std::collections::BTreeSet::new();
        self.cannot.retain(|c| seen.insert(c.clone()));
        if !self.cannot.is_empty() {
            return Err(NetworkError::Unkept(self.cannot));
        }
        self.net.ip.extend(self.masters);
        self.net.ip.extend(self.up);
        Ok(self.net)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BRIDGE: &str = r#"== links
[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536},{"ifindex":2,"ifname":"br0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"linkinfo":{"info_kind":"bridge","info_data":{"stp_state":0}}},{"ifindex":3,"ifname":"d0","flags":["BROADCAST","NOARP"],"mtu":9000,"master":"br0","linkinfo":{"info_kind":"dummy"}}]
== addresses
[{"ifindex":1,"ifname":"lo","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host"}]},{"ifindex":2,"ifname":"br0","addr_info":[{"family":"inet","local":"10.0.3.1","prefixlen":24,"scope":"global","label":"br0"},{"family":"inet6","local":"fd00::1","prefixlen":64,"scope":"global"},{"family":"inet6","local":"fe80::84d2:a0ff:fe4e:347a","prefixlen":64,"scope":"link"}]}]
== routes
[{"dst":"10.0.3.0/24","dev":"br0","protocol":"kernel","scope":"link","prefsrc":"10.0.3.1","flags":[]}]
== routes6
[{"dst":"fe80::/64","dev":"br0","protocol":"kernel","metric":256,"flags":[],"pref":"medium"}]
== nft
== iptables
== forwarding
1
0
"#;

    #[test]
    fn a_bridge_with_its_port_and_addresses_is_made_again_in_order() {
        let net = read(BRIDGE).unwrap();
        assert_eq!(net.links, ["br0", "d0"]);
        assert_eq!(
            net.ip,
            [
                "link add name br0 type bridge",
                "link add name d0 type dummy",
                "link set dev d0 mtu 9000",
                "address add 10.0.3.1/24 dev br0",
                "address add fd00::1/64 dev br0",
                "link set dev d0 master br0",
                "link set dev br0 up",
            ]
        );
        assert!(net.forward_v4 && !net.forward_v6);
        assert_eq!(net.nft, None);
        assert_eq!(net.summary(), "br0, d0, forwarding");
        assert_eq!(
            net.sysctl_script().as_deref(),
            Some("echo 1 > /proc/sys/net/ipv4/ip_forward")
        );
    }

    #[test]
    fn a_fresh_network_is_empty() {
        let fresh = "== links\n[{\"ifname\":\"lo\",\"flags\":[\"UP\"]}]\n== addresses\n[]\n== routes\n[]\n== routes6\n\n== nft\n== iptables\n== forwarding\n0\n0\n";
        let net = read(fresh).unwrap();
        assert!(net.is_empty(), "{net:?}");
        assert_eq!(net.sysctl_script(), None);
    }

    #[test]
    fn rules_are_kept_as_nft_prints_them() {
        let report = "== links\n[{\"ifname\":\"lo\"}]\n== nft\ntable inet nat {\n\tchain post {\n\t}\n}\n== forwarding\n0\n";
        let net = read(report).unwrap();
        assert_eq!(
            net.nft.as_deref(),
            Some("table inet nat {\n\tchain post {\n\t}\n}\n")
        );
        assert_eq!(net.summary(), "nftables rules");
    }

    #[test]
    fn what_a_description_cannot_make_again_is_named() {
        let report = r#"== links
[{"ifname":"lo"},{"ifname":"br0","flags":["UP"],"linkinfo":{"info_kind":"bridge"}},{"ifname":"veth0","link":"eth0","flags":["UP"],"linkinfo":{"info_kind":"veth"}},{"ifname":"sit0","flags":[]}]
== routes
[{"dst":"default","gateway":"10.0.3.254","dev":"br0","protocol":"boot"}]
== iptables
filter
nat
"#;
        let why = read(report).unwrap_err().to_string();
        assert_eq!(
            why,
            "it leaves network state a checkpoint cannot make again (veth0 (veth), sit0, \
             the route default via 10.0.3.254 dev br0, legacy iptables tables (filter, nat))"
        );
    }

    #[test]
    fn state_beyond_links_and_main_routes_is_named_too() {
        let report = r#"== links
[{"ifname":"lo"},{"ifname":"b#x","linkinfo":{"info_kind":"bridge"}}]
== addresses
[{"ifname":"lo","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8},{"family":"inet","local":"10.9.9.9","prefixlen":32},{"family":"inet6","local":"::1","prefixlen":128}]}]
== routes
[{"type":"local","dst":"127.0.0.1","dev":"lo","table":"local","protocol":"kernel"},{"dst":"10.1.0.0/16","dev":"lo","table":"100","protocol":"boot"}]
== routes6
[{"dst":"10.1.0.0/16","dev":"lo","table":"100","protocol":"boot"}]
== rules
[{"priority":0,"src":"all","table":"local"},{"priority":32765,"src":"10.0.0.0","srclen":8,"table":"100"},{"priority":32766,"src":"all","table":"main"},{"priority":32767,"src":"all","table":"default"}]
== rules6
[{"priority":0,"src":"all","table":"local"},{"priority":32766,"src":"all","table":"main"}]
== nft
# Warning: table ip mangle is managed by iptables-nft, do not touch!
table ip mangle {
}
"#;
        let why = read(report).unwrap_err().to_string();
        assert_eq!(
            why,
            "it leaves network state a checkpoint cannot make again (a link named \"b#x\", \
             the address 10.9.9.9/32 on lo, the route 10.1.0.0/16 dev lo table 100, \
             the routing rule of priority 32765, \
             nftables rules made by iptables, which nft cannot load back)"
        );
    }

    #[test]
    fn output_that_is_not_ip_json_is_an_error_not_an_empty_network() {
        let why = read("== links\nip: command not found\n")
            .unwrap_err()
            .to_string();
        assert!(why.contains("cannot read `ip -j` on links"), "{why}");
        let why = read("== links\n== addresses\n").unwrap_err();
        assert!(matches!(why, NetworkError::NoLoopback), "{why}");
        assert!(
            why.to_string().contains("cannot inspect its network"),
            "{why}"
        );
    }
}
