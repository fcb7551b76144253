"""The real path: real data files (`data`), and real data with LLM evaluators as a source (`source`)."""
