// Placeholder until the Training layer lands; see docs/ARCHITECTURE.md.
