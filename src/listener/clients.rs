//! Per-client accounting: how many connections one client address has open, and how many
//! request body bytes it has in flight, so that one client cannot take what the server has
//! for everyone.
//!
//! A client is an IPv4 address or an IPv6 /64 network (one host usually owns a whole /64, so
//! counting single IPv6 addresses would cap nothing). An IPv4 address seen through a dual-stack
//! socket (`::ffff:a.b.c.d`) counts as that IPv4 address. An entry exists while the client
//! has a connection open, so the table is as large as the set of connected clients.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// The address a client is counted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self(IpAddr::V4(v4)),
            IpAddr::V6(v6) => {
                let network = u128::from(v6) & !((1u128 << 64) - 1);
                Self(IpAddr::V6(Ipv6Addr::from(network)))
            }
        }
    }
}

impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// One connected client: what its requests reserve memory from.
#[derive(Debug)]
pub struct Client {
    pub key: ClientKey,
    /// One permit per KiB of request body in flight; `None`: no per-client limit.
    inflight: Option<Arc<Semaphore>>,
}

/// The client is over its in-flight cap and no room came free in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverInflightCap;

impl Client {
    /// Reserves `kib` KiB of this client's in-flight allowance, waiting until `deadline` for
    /// its own earlier requests to finish. `Ok(None)` when the client has no cap.
    pub async fn reserve(
        &self,
        kib: u32,
        deadline: Instant,
    ) -> Result<Option<OwnedSemaphorePermit>, OverInflightCap> {
        let Some(inflight) = &self.inflight else { return Ok(None) };
        match tokio::time::timeout_at(deadline, inflight.clone().acquire_many_owned(kib)).await {
            Ok(Ok(permit)) => Ok(Some(permit)),
            _ => Err(OverInflightCap),
        }
    }
}

/// Limits per client address; 0 turns a limit off.
#[derive(Debug, Clone, Copy)]
pub struct ClientLimits {
    pub max_connections: u32,
    pub max_inflight_bytes: u64,
}

struct Slot {
    client: Arc<Client>,
    connections: u32,
}

/// Every connected client of one listener.
pub struct Clients {
    limits: ClientLimits,
    table: Mutex<HashMap<ClientKey, Slot>>,
}

/// The client already has `max_connections` open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyConnections {
    pub open: u32,
}

impl Clients {
    pub fn new(limits: ClientLimits) -> Arc<Self> {
        Arc::new(Self { limits, table: Mutex::new(HashMap::new()) })
    }

    /// Counts a new connection from `ip`, or refuses it when the client is at its cap. The
    /// connection counts until the returned value is dropped.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admitted, TooManyConnections> {
        let key = ClientKey::of(ip);
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let slot = table.entry(key).or_insert_with(|| Slot {
            client: Arc::new(Client { key, inflight: self.inflight_allowance() }),
            connections: 0,
        });
        let max = self.limits.max_connections;
        if max != 0 && slot.connections >= max {
            return Err(TooManyConnections { open: slot.connections });
        }
        slot.connections += 1;
        Ok(Admitted { clients: self.clone(), client: slot.client.clone() })
    }

    fn inflight_allowance(&self) -> Option<Arc<Semaphore>> {
        let kib = self.limits.max_inflight_bytes.div_ceil(1024);
        (kib != 0)
            .then(|| Arc::new(Semaphore::new(kib.min(Semaphore::MAX_PERMITS as u64) as usize)))
    }

    /// Connections `ip`'s client has open now.
    pub fn connections(&self, ip: IpAddr) -> u32 {
        let table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        table.get(&ClientKey::of(ip)).map_or(0, |slot| slot.connections)
    }

    /// Clients with a connection open.
    pub fn len(&self) -> usize {
        self.table.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An admitted connection; dropping it gives its place back.
pub struct Admitted {
    clients: Arc<Clients>,
    client: Arc<Client>,
}

impl Admitted {
    pub fn client(&self) -> &Arc<Client> {
        &self.client
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut table = self.clients.table.lock().unwrap_or_else(|e| e.into_inner());
        if let Entry::Occupied(mut slot) = table.entry(self.client.key) {
            slot.get_mut().connections -= 1;
            if slot.get().connections == 0 {
                slot.remove();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn clients(max_connections: u32, max_inflight_bytes: u64) -> Arc<Clients> {
        Clients::new(ClientLimits { max_connections, max_inflight_bytes })
    }

    #[test]
    fn a_client_past_its_connection_cap_is_refused_and_others_are_not() {
        let clients = clients(2, 0);
        let a = clients.admit(ip("10.0.0.1")).unwrap();
        let _b = clients.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(clients.admit(ip("10.0.0.1")).err(), Some(TooManyConnections { open: 2 }));
        let _other = clients.admit(ip("10.0.0.2")).expect("another address has its own cap");
        drop(a);
        let _c = clients.admit(ip("10.0.0.1")).expect("a closed connection frees its place");
    }

    #[test]
    fn the_table_forgets_a_client_when_its_last_connection_closes() {
        let clients = clients(0, 32 << 20);
        let a = clients.admit(ip("10.0.0.1")).unwrap();
        let b = clients.admit(ip("10.0.0.1")).unwrap();
        assert_eq!((clients.len(), clients.connections(ip("10.0.0.1"))), (1, 2));
        drop(a);
        assert_eq!(clients.len(), 1);
        drop(b);
        assert!(clients.is_empty());
    }

    #[test]
    fn zero_means_no_connection_cap() {
        let clients = clients(0, 0);
        let held: Vec<_> = (0..1000).map(|_| clients.admit(ip("10.0.0.1")).unwrap()).collect();
        assert_eq!(clients.connections(ip("10.0.0.1")), 1000);
        drop(held);
    }

    #[test]
    fn ipv6_clients_count_per_64_and_mapped_ipv4_as_ipv4() {
        let clients = clients(1, 0);
        let _a = clients.admit(ip("2001:db8:1:2::1")).unwrap();
        assert!(clients.admit(ip("2001:db8:1:2:ffff::9")).is_err(), "same /64");
        let _b = clients.admit(ip("2001:db8:1:3::1")).expect("another /64");
        let _c = clients.admit(ip("192.0.2.7")).unwrap();
        assert!(clients.admit(ip("::ffff:192.0.2.7")).is_err(), "the same IPv4 client");
        assert_eq!(ClientKey::of(ip("2001:db8:1:2::1")).to_string(), "2001:db8:1:2::/64");
    }

    #[tokio::test]
    async fn a_client_at_its_inflight_cap_waits_and_then_is_refused_while_others_reserve() {
        let clients = clients(0, 8 << 20);
        let a = clients.admit(ip("10.0.0.1")).unwrap();
        let other = clients.admit(ip("10.0.0.2")).unwrap();
        let soon = || Instant::now() + Duration::from_millis(200);
        let held = a.client().reserve(8 * 1024, soon()).await.unwrap().expect("a permit");
        assert_eq!(a.client().reserve(1, soon()).await.unwrap_err(), OverInflightCap);
        assert!(other.client().reserve(8 * 1024, soon()).await.unwrap().is_some());
        // Room that comes free while waiting is taken.
        let client = a.client().clone();
        let waiter = tokio::spawn(async move {
            client.reserve(1024, Instant::now() + Duration::from_secs(5)).await.is_ok()
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(held);
        assert!(waiter.await.unwrap());
    }

    #[tokio::test]
    async fn connections_of_one_client_share_its_inflight_allowance() {
        let clients = clients(0, 8 << 20);
        let first = clients.admit(ip("10.0.0.1")).unwrap();
        let second = clients.admit(ip("10.0.0.1")).unwrap();
        let soon = Instant::now() + Duration::from_millis(100);
        let _held = first.client().reserve(8 * 1024, soon).await.unwrap();
        assert!(second.client().reserve(1, soon).await.is_err());
    }

    #[tokio::test]
    async fn without_an_inflight_cap_nothing_is_reserved() {
        let clients = clients(0, 0);
        let a = clients.admit(ip("10.0.0.1")).unwrap();
        assert!(a.client().reserve(u32::MAX, Instant::now()).await.unwrap().is_none());
    }
}
