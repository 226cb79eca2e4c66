"""Model sources: the builtin tiny Llama and local Hugging Face checkpoints."""
