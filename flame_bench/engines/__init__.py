"""Engines: how text is produced and models are handled. Batched and cached generation through `hf`, vLLM or an
OpenAI-compatible server (`generation`, `generation_cache`), model directories (`models`) and their installer
(`model_install`), and the LLM backends the real path's evaluators run on (`llm/`: local, endpoint, cache, serve)."""
