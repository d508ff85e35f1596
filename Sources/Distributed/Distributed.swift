// Placeholder until the Distributed layer lands; see docs/ARCHITECTURE.md.
