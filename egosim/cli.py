"""The `egosim` command line: the one module that imports every part (core, tasks, policies, eval).

    egosim eval [key=value ...]   play a policy on tasks x embodiments (Hydra overrides of conf/eval.yaml)
    egosim list                   registered env ids with their tags, embodiments and policy kinds

Bad names and values end with a one-line error and exit status 2 (no traceback).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from collections.abc import Sequence

from egosim.errors import EgosimError

EXIT_USAGE = 2


def _compose_eval_config(overrides: Sequence[str]):
    from hydra import compose, initialize_config_module
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from egosim.errors import ConfigError
    from egosim.eval.runner import EvalConfig

    try:
        with initialize_config_module(config_module="egosim.conf", version_base=None):
            cfg = compose("eval", overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as exc:
        msg = " ".join(str(exc).split())
        unknown = re.match(r"Could not override '([^']+)'", msg)
        what = f"unknown key {unknown.group(1)!r}" if unknown else f"bad override: {msg}"
        keys = ", ".join(f.name for f in dataclasses.fields(EvalConfig))
        raise ConfigError(f"{what}; valid keys: {keys}") from None
    return OmegaConf.to_container(cfg, resolve=True)


def cmd_eval(overrides: Sequence[str]) -> int:
    from egosim.eval.runner import EvalConfig, run_eval

    cfg = EvalConfig.from_mapping(_compose_eval_config(overrides))
    run_eval(cfg)
    return 0


def cmd_list(tag: str | None = None) -> int:
    from egosim.embodiment import embodiment_names, get_embodiment
    from egosim.policies import get_policy_kind, policy_kinds
    from egosim.tasks import TASKS, env_id

    rows = []
    for task, cls in TASKS.items():
        if tag is not None and tag not in cls.tags:
            continue
        for emb in embodiment_names():
            e = get_embodiment(emb)
            rows.append((env_id(task, emb), task, emb, f"{e.action_dim}-D", ",".join(sorted(cls.tags)) or "-"))
    head = ("env id", "task", "embodiment", "action", "tags")
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    for r in [head, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    print("\npolicy kinds:")
    for k in policy_kinds():
        print(f"  {k:<8}  {get_policy_kind(k).description}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="egosim", description="egosim: dexterous bimanual manipulation benchmark")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{eval,list}")
    p_eval = sub.add_parser(
        "eval", help="evaluate a policy (Hydra overrides, e.g. policy=random episodes=3)",
        description="Play a policy on tasks x embodiments and write DIR/summary.json. Overrides of "
        "egosim/conf/eval.yaml: tasks=[...] embodiments=[...] policy=expert|random episodes=N seed=S "
        "output_dir=DIR record_video=true max_steps=N",
    )
    p_eval.add_argument("overrides", nargs="*", metavar="key=value")
    p_list = sub.add_parser("list", help="registered env ids, tags and policy kinds")
    p_list.add_argument("--tag", default=None, help="only tasks with this tag (main, one_shot, g1, cloth)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "eval":
            return cmd_eval(args.overrides)
        return cmd_list(args.tag)
    except EgosimError as exc:
        print(f"egosim {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"egosim {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
