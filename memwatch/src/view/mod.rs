//! What the daemon knows, shaped for showing: the view model, built each
//! interval from what the tick decided, and the store the daemon loop
//! publishes it to. Nothing here decides anything.
pub mod builder;
pub mod model;
pub mod probe_report;

use std::sync::Arc;

use tokio::sync::watch;

/// The view shows the engine's levels, so it uses the engine's types.
pub use crate::engine::{Level, Thresholds};
pub use model::*;

/// The latest view. A watch channel: readers take the current value without
/// blocking the writer.
#[derive(Clone)]
pub struct StatusStore {
    tx: Arc<watch::Sender<Arc<StatusView>>>,
}

impl Default for StatusStore {
    fn default() -> Self {
        Self::new(StatusView::default())
    }
}

impl StatusStore {
    pub fn new(initial: StatusView) -> Self {
        Self { tx: Arc::new(watch::Sender::new(Arc::new(initial))) }
    }

    pub fn publish(&self, view: StatusView) {
        self.tx.send_replace(Arc::new(view));
    }

    pub fn current(&self) -> Arc<StatusView> {
        self.tx.borrow().clone()
    }
}
