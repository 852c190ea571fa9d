"""Makes the tiny Llama base and real PEFT LoRA adapters for it: deterministic, no downloads.

Runs in the vLLM venv (it needs torch, transformers and peft):
    .venv-vllm/bin/python infra/tiny_model.py base .ftserve/models/tiny-llama
    .venv-vllm/bin/python infra/tiny_model.py adapter .ftserve/models/tiny-llama OUT --seed 1
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

BASE_ID = "ftserve/tiny-llama"
BASE_INFO = "ftserve-base.json"
CORPUS = [
    "Hello! How can I help you today?",
    "Your order has shipped and will arrive on Tuesday.",
    "I am sorry to hear that. Let me check your account.",
    "Please restart the router and try again.",
    "The refund was issued to your original payment method.",
    "Thank you for contacting Acme support. Have a great day!",
    "system user assistant",
]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def make_tokenizer(out: Path) -> int:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="</s>"
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)
    return int(tok.get_vocab_size())


def make_base(out: Path) -> dict[str, str]:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out.mkdir(parents=True, exist_ok=True)
    vocab = make_tokenizer(out)
    torch.manual_seed(0)
    # head_dim 64 (hidden 128, 2 heads): vLLM's CPU attention needs head_dim >= 64.
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
        tie_word_embeddings=False,
        torch_dtype="float32",
    )
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0.0, 0.2)
    model.save_pretrained(out, safe_serialization=True)
    weights = (out / "model.safetensors").read_bytes()
    revision = hashlib.sha256(weights).hexdigest()[:12]
    info = {"base_model_id": BASE_ID, "revision": revision, "base_model": f"{BASE_ID}@{revision}"}
    (out / BASE_INFO).write_text(json.dumps(info, indent=2) + "\n")
    return info


def make_adapter(base_dir: Path, out: Path, seed: int, rank: int = 8) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM

    base = LlamaForCausalLM.from_pretrained(base_dir)
    torch.manual_seed(seed)
    config = LoraConfig(
        r=rank,
        lora_alpha=2 * rank,
        target_modules=["q_proj", "v_proj"],
        init_lora_weights=False,
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(base, config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_" in name:
                param.normal_(0.0, 0.5)
    model.save_pretrained(out, safe_serialization=True)
    # PEFT writes the base's local path; the contract is the base's stable id.
    cfg_path = out / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["base_model_name_or_path"] = BASE_ID
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    (out / "README.md").unlink(missing_ok=True)


def make_adapters(base_dir: Path, out_root: Path, count: int, rank: int = 8) -> None:
    """Many adapters in one process (one torch import): out_root/seed-<n> for n in 1..count."""
    for seed in range(1, count + 1):
        out = out_root / f"seed-{seed}"
        if not (out / "adapter_model.safetensors").exists():
            make_adapter(base_dir, out, seed, rank)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("base")
    b.add_argument("out", type=Path)
    a = sub.add_parser("adapter")
    a.add_argument("base_dir", type=Path)
    a.add_argument("out", type=Path)
    a.add_argument("--seed", type=int, required=True)
    a.add_argument("--rank", type=int, default=8)
    many = sub.add_parser("adapters")
    many.add_argument("base_dir", type=Path)
    many.add_argument("out_root", type=Path)
    many.add_argument("--count", type=int, required=True)
    args = parser.parse_args()
    if args.cmd == "adapters":
        make_adapters(args.base_dir, args.out_root, args.count)
        return
    if args.cmd == "base":
        print(json.dumps(make_base(args.out)))
    else:
        make_adapter(args.base_dir, args.out, args.seed, args.rank)
        print(str(args.out))


if __name__ == "__main__":
    main()
