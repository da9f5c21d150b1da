//! Throttling a cgroup that systemd owns, through systemd.
//!
//! systemd's cgroup rules (systemd.io/CGROUP_DELEGATION) say a unit's own
//! cgroup is the manager's: another program writing its `memory.high`
//! fights systemd, which rewrites the file from the unit's properties on
//! any reload. So for a cgroup that is exactly some unit's `ControlGroup`,
//! memwatch reads and sets the unit's `MemoryHigh` property over D-Bus
//! (`SetUnitProperties`, runtime=true: the drop-in lives under /run and
//! vanishes at reboot), and systemd writes the file. Cgroups systemd does not
//! own as a unit (the inside of a delegated subtree, or any cgroup on a host
//! not booted with systemd) are written directly by `sys::cgroup`.
//!
//! Each call blocks the monitoring loop for one round trip (about a
//! millisecond), bounded by `CALL_TIMEOUT` should systemd be busy.
use std::{path::Path, time::Duration};

use zbus::{
    blocking::{Connection, connection},
    zvariant::{OwnedObjectPath, OwnedValue, Value},
};

use super::ActError;
use crate::model::cgroup::Limit;

const SYSTEMD: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const PROPERTIES: &str = "org.freedesktop.DBus.Properties";
const NO_SUCH_UNIT: &str = "org.freedesktop.systemd1.NoSuchUnit";
/// Long enough for a busy manager, short enough that a hung one costs the
/// loop a couple of readings at most.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// What sd_booted(3) checks: systemd is PID 1.
const BOOTED_MARKER: &str = "/run/systemd/system";

/// The service manager's view of units, as the throttle state needs it.
pub trait UnitManager: Send {
    /// The unit whose own cgroup is `cgroup` (as /proc/PID/cgroup spells
    /// it, "/system.slice/x.service"), if systemd manages it as one.
    /// `Ok(None)`: write the file (no systemd, or not a unit's cgroup).
    fn owner(&mut self, cgroup: &str) -> Result<Option<String>, ActError>;
    /// The unit's `MemoryHigh=` (`infinity` is `Limit::Max`); `Ok(None)`
    /// when the unit no longer exists.
    fn memory_high(&mut self, unit: &str) -> Result<Option<Limit>, ActError>;
    /// Sets `MemoryHigh=` at runtime; `Ok(false)` when the unit no longer exists.
    fn set_memory_high(&mut self, unit: &str, limit: Limit) -> Result<bool, ActError>;
}

/// The unit kinds that have a cgroup of their own and a `MemoryHigh=`, and
/// the D-Bus interface each one's properties are on.
fn unit_interface(unit: &str) -> Option<&'static str> {
    [
        (".service", "org.freedesktop.systemd1.Service"),
        (".scope", "org.freedesktop.systemd1.Scope"),
        (".slice", "org.freedesktop.systemd1.Slice"),
    ]
    .into_iter()
    .find(|(suffix, _)| unit.ends_with(suffix))
    .map(|(_, interface)| interface)
}

/// systemd on the system bus, connected on first use.
#[derive(Default)]
pub struct SystemBus {
    connection: Option<Connection>,
    /// The bus was unreachable once already (said so in the log).
    warned_unreachable: bool,
}

impl SystemBus {
    fn connection(&mut self) -> Result<&Connection, zbus::Error> {
        if self.connection.is_none() {
            let built = connection::Builder::system()?.method_timeout(CALL_TIMEOUT).build()?;
            self.connection = Some(built);
        }
        Ok(self.connection.as_ref().expect("connected above"))
    }

    /// One method call; a broken connection is dropped so the next call
    /// reconnects (the bus daemon may have been restarted).
    fn call<B>(&mut self, path: &str, interface: &str, method: &str, body: &B) -> Result<zbus::Message, zbus::Error>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
    {
        let result = self.connection()?.call_method(Some(SYSTEMD), path, Some(interface), method, body);
        if let Err(zbus::Error::InputOutput(_)) = &result {
            self.connection = None;
        }
        result
    }

    /// The unit's object path; `Ok(None)` if systemd has no such unit loaded.
    fn unit_path(&mut self, unit: &str) -> Result<Option<OwnedObjectPath>, ActError> {
        match self.call(MANAGER_PATH, MANAGER, "GetUnit", &(unit,)) {
            Ok(reply) => reply.body().deserialize().map(Some).map_err(|e| bus_error(unit, "GetUnit", e)),
            Err(zbus::Error::MethodError(name, _, _)) if name.as_str() == NO_SUCH_UNIT => Ok(None),
            Err(e) => Err(bus_error(unit, "GetUnit", e)),
        }
    }

    fn property(&mut self, unit: &str, name: &str) -> Result<Option<OwnedValue>, ActError> {
        let Some(interface) = unit_interface(unit) else { return Ok(None) };
        let Some(path) = self.unit_path(unit)? else { return Ok(None) };
        let reply =
            self.call(path.as_str(), PROPERTIES, "Get", &(interface, name)).map_err(|e| bus_error(unit, name, e))?;
        reply.body().deserialize::<OwnedValue>().map(Some).map_err(|e| bus_error(unit, name, e))
    }
}

impl UnitManager for SystemBus {
    fn owner(&mut self, cgroup: &str) -> Result<Option<String>, ActError> {
        let Some(unit) = Path::new(cgroup).file_name().and_then(|n| n.to_str()) else { return Ok(None) };
        if unit_interface(unit).is_none() || !Path::new(BOOTED_MARKER).is_dir() {
            return Ok(None);
        }
        let unit = unit.to_owned();
        if let Err(e) = self.connection() {
            // Better a direct write systemd may later undo than no throttle.
            if !std::mem::replace(&mut self.warned_unreachable, true) {
                tracing::warn!(
                    "systemd is PID 1 but its bus cannot be reached ({e}): unit cgroups are throttled by \
                     writing memory.high directly, which systemd puts back on its next reload of the unit"
                );
            }
            return Ok(None);
        }
        let Some(value) = self.property(&unit, "ControlGroup")? else { return Ok(None) };
        let owned_cgroup = String::try_from(value).map_err(|e| bus_error(&unit, "ControlGroup", e.into()))?;
        // A delegated subtree may name its own cgroups like units; only the
        // unit's own cgroup is systemd's.
        Ok((owned_cgroup == cgroup).then_some(unit))
    }

    fn memory_high(&mut self, unit: &str) -> Result<Option<Limit>, ActError> {
        let Some(value) = self.property(unit, "MemoryHigh")? else { return Ok(None) };
        let bytes = u64::try_from(value).map_err(|e| bus_error(unit, "MemoryHigh", e.into()))?;
        Ok(Some(if bytes == u64::MAX { Limit::Max } else { Limit::Bytes(bytes) }))
    }

    fn set_memory_high(&mut self, unit: &str, limit: Limit) -> Result<bool, ActError> {
        let bytes = match limit {
            Limit::Max => u64::MAX,
            Limit::Bytes(bytes) => bytes,
        };
        let properties = vec![("MemoryHigh", Value::U64(bytes))];
        match self.call(MANAGER_PATH, MANAGER, "SetUnitProperties", &(unit, true, properties)) {
            Ok(_) => Ok(true),
            Err(zbus::Error::MethodError(name, _, _)) if name.as_str() == NO_SUCH_UNIT => Ok(false),
            Err(e) => Err(bus_error(unit, "SetUnitProperties", e)),
        }
    }
}

fn bus_error(unit: &str, what: &str, e: zbus::Error) -> ActError {
    let answered = matches!(e, zbus::Error::MethodError(..));
    ActError::Systemd { unit: unit.to_owned(), what: what.to_owned(), detail: e.to_string(), answered }
}
