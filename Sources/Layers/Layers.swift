// Placeholder until the Layers layer lands; see docs/ARCHITECTURE.md.
