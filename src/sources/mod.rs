//! Sources of desired state and of discovered records. Today: a git commit of a local
//! repository (`git.rs`); Kubernetes and Tailscale discovery come later.

pub mod git;
pub mod repo;
