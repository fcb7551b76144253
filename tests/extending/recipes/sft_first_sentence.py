"""`sft_first_sentence`: SFT on the first sentence of each human response (flame-bench's extending example)."""

from dataclasses import asdict, dataclass

from flame_bench.alignment.stages import Recipe, StageContext, positive
from flame_bench.core.registry import RECIPES


@dataclass
class FirstSentenceConfig:
    learning_rate: float = 3e-4
    epochs: float = 1.0
    batch_size: int = 16
    max_length: int = 192

    def __post_init__(self) -> None:  # checked before any stage trains, with the system file's line
        positive(self, "learning_rate", "epochs", "batch_size", "max_length")


def run(ctx: StageContext, config: FirstSentenceConfig) -> dict:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from flame_bench.alignment.training import (
        chat_example,
        finish_training,
        latest_checkpoint,
        training_callbacks,
        trl_config,
    )

    examples = [chat_example(r["instruction"], r["response"].split(". ")[0].rstrip(".") + ".")
                for r in ctx.source.sft_examples()]  # the source's seed data: fact world or real files
    tok = AutoTokenizer.from_pretrained(ctx.input_model)
    model = AutoModelForCausalLM.from_pretrained(ctx.input_model, use_safetensors=True)
    work = ctx.output_dir.parent / "trainer"  # checkpoints: an interrupted stage resumes from them
    args = trl_config(SFTConfig, work, ctx.seed, learning_rate=config.learning_rate, num_train_epochs=config.epochs,
                      per_device_train_batch_size=config.batch_size, max_length=config.max_length)
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(examples), processing_class=tok,
                         callbacks=training_callbacks("SFT (first sentences)", ctx.quiet))
    stats = finish_training(trainer, tok, ctx, latest_checkpoint(work))  # saves safetensors to ctx.output_dir
    return {"examples": len(examples), **stats, "config": asdict(config)}


RECIPES.register("sft_first_sentence")(Recipe(
    "sft_first_sentence", "1", "SFT on the first sentence of each human response", FirstSentenceConfig, run))
