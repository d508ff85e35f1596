// Placeholder until the GhostNet layer lands; see docs/ARCHITECTURE.md.
