//! Checkpoints: the state at the end of a `needs` chain, kept as a layer in
//! the cache so that the next run of the chain's last recipe starts from it
//! instead of replaying its prerequisites. [`key`] names a checkpoint (what
//! it depends on); [`store`] is the folder of layers (where each lives, the
//! half-made ones, which are current, removal). The sandbox makes and
//! restores the layers themselves (`sandbox::checkpoint`), and the runner
//! decides when.

pub mod key;
pub mod store;

pub use key::{checkpoint_key, lib_digest};
pub use store::{Checkpoint, Layers};
