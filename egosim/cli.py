"""The `egosim` command line: the one module that imports every part (core, tasks, policies, eval).

    egosim eval [key=value ...]       play a policy on tasks x embodiments (Hydra overrides of conf/eval.yaml)
    egosim serve [key=value ...]      serve a policy over GR00T's or openpi's protocol (conf/serve.yaml)
    egosim validate [key=value ...]   eval, then the go/no-go gate before a real-robot session
                                      (conf/validate.yaml; exit 0 = go, 1 = no-go)
    egosim report [options]           Markdown + HTML + summary.json from the results store
    egosim real add [options]         store one real-robot trial
    egosim real import FILE.csv       store a CSV of real-robot trials (columns: egosim.eval.real)
    egosim collect [key=value ...]    record policy demos as LeRobot v3.0 datasets, one per embodiment
                                      (Hydra overrides of conf/collect.yaml; rerun to resume)
    egosim train [key=value ...]      train the VLA: stage=pretrain|midtrain|finetune on dataset folders
                                      (Hydra overrides of conf/train.yaml; rerun to resume)
    egosim list                       registered env ids with their tags, embodiments and policy kinds

Bad names and values end with a one-line error and exit status 2 (no traceback).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from egosim.errors import EgosimError

EXIT_USAGE = 2


def _compose(config_name: str, overrides: Sequence[str]):
    from hydra import compose, initialize_config_module
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from egosim.errors import ConfigError
    from egosim.eval.runner import EvalConfig

    try:
        with initialize_config_module(config_module="egosim.conf", version_base=None):
            cfg = compose(config_name, overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as exc:
        msg = " ".join(str(exc).split())
        unknown = re.match(r"Could not override '([^']+)'", msg)
        what = f"unknown key {unknown.group(1)!r}" if unknown else f"bad override: {msg}"
        fields = dataclasses.fields(EvalConfig)
        if config_name == "collect":
            from egosim.data.collect import CollectConfig

            fields = dataclasses.fields(CollectConfig)
        if config_name == "train":
            from egosim.policies.vla.train_cli import TrainConfig

            fields = dataclasses.fields(TrainConfig)
        if config_name == "import_egodex":
            from egosim.data.egodex import ImportConfig

            fields = dataclasses.fields(ImportConfig)
        keys = ", ".join(f.name for f in fields)
        if config_name == "validate":
            keys += ", gate.<threshold>"
        raise ConfigError(f"{what}; valid keys: {keys}") from None
    return OmegaConf.to_container(cfg, resolve=True)


def cmd_eval(overrides: Sequence[str]) -> int:
    from egosim.eval.runner import EvalConfig, run_eval

    cfg = EvalConfig.from_mapping(_compose("eval", overrides))
    run_eval(cfg)
    return 0


def cmd_validate(overrides: Sequence[str]) -> int:
    from egosim.eval.runner import EvalConfig, run_eval
    from egosim.eval.store import ResultsStore
    from egosim.eval.validate import GateConfig, check

    raw = _compose("validate", overrides)
    gate = GateConfig.from_mapping(raw.pop("gate") or {})
    cfg = EvalConfig.from_mapping(raw)
    rows = run_eval(cfg)
    tasks, run_id = [r["task"] for r in rows], rows[0]["run_id"]
    with ResultsStore(cfg.store_path) as store:
        records = store.episodes(run_ids=[run_id], domain="sim")
    verdict = check(records, gate, known_tasks=tasks)
    print("\n" + "\n".join(verdict.lines()))
    (Path(cfg.output_dir) / "verdict.json").write_text(json.dumps(dataclasses.asdict(verdict), indent=2) + "\n")
    return 0 if verdict.go else 1


@dataclasses.dataclass(frozen=True)
class CollectEnvFactory:
    """Builds collection envs in any process (picklable, for `egosim collect workers=N`)."""

    needs_images: bool
    needs_privileged: bool
    head_motion: str = "auto"

    def __call__(self, task: str, embodiment: str, video: bool, image_size: tuple[int, int]):
        from egosim.rig import RigConfig
        from egosim.tasks import make_env

        return make_env(task, embodiment, obs_mode="rgb" if (video or self.needs_images) else "state",
                        privileged=self.needs_privileged,
                        rig_config=RigConfig(image_size=tuple(image_size), head_motion=self.head_motion))


@dataclasses.dataclass(frozen=True)
class CollectPolicyFactory:
    """Builds the collecting policy in any process (picklable)."""

    kind: str

    def __call__(self, env, seed: int):
        from egosim.policies import make_policy

        return make_policy(self.kind, env, seed=seed)


def cmd_collect(overrides: Sequence[str]) -> int:
    """Wires `egosim.data.collect` to the task registry and the policy kinds."""
    from egosim.data.collect import CollectConfig, collect, resolve
    from egosim.embodiment import ROBOT_TAG, embodiment_names
    from egosim.errors import ConfigError
    from egosim.policies import get_policy_kind
    from egosim.tasks import task_names

    cfg = CollectConfig.from_mapping(_compose("collect", overrides))
    procedural = task_names("procedural")
    if cfg.source == "procedural":
        cfg.tasks = resolve(cfg.tasks or ["all"], procedural, "procedural task")
    else:
        for name in cfg.tasks or ():
            if name in procedural:
                raise ConfigError(f"{name!r} is a procedural scene (no fixed goal): collect it with "
                                  f"source=procedural hours=H")
        cfg.tasks = resolve(cfg.tasks, task_names(), "task")
    cfg.embodiments = resolve(cfg.embodiments, embodiment_names(), "embodiment", all_names=embodiment_names(ROBOT_TAG))
    kind = get_policy_kind(cfg.policy)
    collect(cfg, CollectEnvFactory(kind.needs_images, kind.needs_privileged, cfg.head_motion),
            CollectPolicyFactory(cfg.policy))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """`egosim import egodex SRC key=value ...` (`egosim.data.egodex`); exit 1 when a file was skipped."""
    from egosim.data.egodex import ImportConfig, import_egodex

    cfg = ImportConfig.from_mapping(_compose("import_egodex", args.overrides))
    result = import_egodex(args.src, cfg)
    return 1 if result["skipped"] else 0


def cmd_train(overrides: Sequence[str]) -> int:
    """Wires `egosim.policies.vla.train_cli` (torch loads only for this subcommand)."""
    from egosim.errors import reject_unknown_keys
    from egosim.policies.vla.train_cli import TrainConfig, run_train

    reject_unknown_keys([o.split("=", 1)[0].lstrip("+~").split(".")[0] for o in overrides],
                        [f.name for f in dataclasses.fields(TrainConfig)], "train config")
    run_train(TrainConfig.from_mapping(_compose("train", overrides)))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from egosim.eval.report import build_report, write_report

    pairs = [tuple(p) for p in (args.compare or [])]
    data = build_report(args.store, run_ids=args.run, labels=args.label, tasks=args.task, compare_pairs=pairs)
    paths = write_report(data, args.out, title=args.title)
    for c in data["overall"]:
        print(f"{c['label']:<20} {c['domain']:<4} {c['dof']:>2}-DoF  n={c['n']:<4} success {100 * c['success_rate']:.0f}% "
              f"mean score {c['mean_score']:.3f}")
    print(f"wrote {paths['markdown']}, {paths['html']}, {paths['json']}")
    return 0


def cmd_real(args: argparse.Namespace) -> int:
    from egosim.eval.real import import_csv, make_trial
    from egosim.eval.store import ResultsStore

    with ResultsStore(args.store) as store:
        if args.real_command == "import":
            result = import_csv(args.file, store, run_id=args.run_id)
            print("\n".join(result.lines()))
            return 0 if not result.rejected else 1
        fields = {k: getattr(args, k) for k in ("task", "embodiment", "policy", "checkpoint", "trial", "milestones",
                                                 "score", "success", "operator", "notes", "video")}
        rec = make_trial({k: v for k, v in fields.items() if v is not None}, run_id=args.run_id)
        added = store.add_episode(rec)
    what = f"{rec['label']} {rec['task']} {rec['embodiment']} trial {rec['initial_state']}"
    print(f"stored real trial {what}: score {rec['score']:.2f}, {'success' if rec['success'] else 'failure'}"
          if added else f"trial {what} is already stored in {args.store}; nothing changed")
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


def cmd_serve(overrides: Sequence[str]) -> int:
    """Serves a policy until Ctrl-C (`egosim.policies.remote.server`)."""
    from egosim.errors import reject_unknown_keys
    from egosim.policies.remote.server import ServeConfig, build_service, make_server

    # unknown keys first, so the error lists serve's keys (not eval's, as _compose would)
    reject_unknown_keys([o.split("=", 1)[0].lstrip("+~") for o in overrides],
                        [f.name for f in dataclasses.fields(ServeConfig)], "serve config")
    cfg = ServeConfig.from_mapping(_compose("serve", overrides))
    server = make_server(build_service(cfg), cfg.protocol, cfg.host, cfg.port)
    print(f"serving policy {cfg.policy!r} ({cfg.task}, {cfg.embodiment}) over {cfg.protocol} on "
          f"{cfg.host}:{server.port}; Ctrl-C stops", flush=True)
    try:
        server.serve_forever()
    finally:
        server.shutdown()
    return 0


def build_parser() -> argparse.ArgumentParser:
    from egosim.eval.real import REAL_RUN_ID
    from egosim.eval.runner import EvalConfig

    default_store = str(EvalConfig().store_path)
    parser = argparse.ArgumentParser(prog="egosim", description="egosim: dexterous bimanual manipulation benchmark")
    sub = parser.add_subparsers(dest="command", required=True,
                                metavar="{eval,validate,collect,report,real,list}")
    p_eval = sub.add_parser(
        "eval", help="evaluate a policy (Hydra overrides, e.g. policy=random episodes=3)",
        description="Play a policy on tasks x embodiments and write DIR/summary.json. Overrides of "
        "egosim/conf/eval.yaml: tasks=[...] embodiments=[...] policy=expert|random episodes=N seed=S "
        "output_dir=DIR record_video=true max_steps=N",
    )
    p_eval.add_argument("overrides", nargs="*", metavar="key=value")
    p_val = sub.add_parser(
        "validate", help="eval a policy, then the go/no-go gate before a real-robot session",
        description="Run the sim suite (eval overrides) and check the thresholds of egosim/conf/validate.yaml "
        "(gate.min_score=0.6 gate.max_contact_force=150 ...). Exit 0 = go, 1 = no-go.",
    )
    p_val.add_argument("overrides", nargs="*", metavar="key=value")
    p_col = sub.add_parser(
        "collect", help="record policy demos as LeRobot v3.0 datasets (Hydra overrides, e.g. episodes=20)",
        description="Play a policy and write one LeRobot v3.0 dataset (with GR00T meta/modality.json) per "
        "embodiment under OUTPUT_DIR/<embodiment>. Overrides of egosim/conf/collect.yaml: tasks=[...] "
        "embodiments=[...] policy=expert|random episodes=N seed=S output_dir=DIR keep=success|all video=false "
        "image_size=[H,W] max_steps=N; source=procedural hours=H for human play in procedural scenes (hours of "
        "30 fps frames). Rerun the same command to resume a killed collection.",
    )
    p_col.add_argument("overrides", nargs="*", metavar="key=value")
    p_imp_top = sub.add_parser("import", help="import human recordings into a human dataset (EgoDex)")
    imp_sub = p_imp_top.add_subparsers(dest="import_command", required=True, metavar="{egodex}")
    p_egodex = imp_sub.add_parser(
        "egodex", help="EgoDex <task>/<k>.hdf5 + <k>.mp4 -> a human LeRobot v3.0 dataset (Hydra overrides)",
        description="Convert EgoDex episodes (ARKit y-up poses of 68 joints, camera, LLM task text, 30 Hz video) "
        "into egosim's human format: 21 keypoints per hand in a z-up world, confidences, wrist and camera poses, "
        "ego_view. Overrides of egosim/conf/import_egodex.yaml: output_dir=DIR retarget_to=none|sharpa_wave|"
        "unitree_dex3 image_size=[H,W] video=false max_episodes=N retarget={smoothing:0.3}. Bad files are "
        "reported and skipped (exit status 1); rerun the same command to resume.",
    )
    p_egodex.add_argument("src", help="EgoDex split or task folder, or one .hdf5 file")
    p_egodex.add_argument("overrides", nargs="*", metavar="key=value")
    p_train = sub.add_parser(
        "train", help="train the VLA on collected datasets (Hydra overrides, e.g. stage=finetune steps=2000)",
        description="Run one VLA training stage. Overrides of egosim/conf/train.yaml: stage=pretrain|midtrain|finetune "
        "data=[DIR,...] or data=[{path:DIR,weight:W},...] init=CKPT steps=N batch_size=B lr=LR horizon=H "
        "save_every=N output_dir=DIR seed=S device=auto|cpu|cuda cache_frames=true model={d_model:64}. "
        "Rerun the same command to resume a killed run.",
    )
    p_train.add_argument("overrides", nargs="*", metavar="key=value")

    p_rep = sub.add_parser("report", help="Markdown + HTML + summary.json from the results store")
    p_rep.add_argument("--store", default=default_store, help=f"results store (default {default_store})")
    p_rep.add_argument("--out", default="outputs/report", help="folder for report.md, report.html, summary.json")
    p_rep.add_argument("--run", action="append", help="only these sim run ids (repeatable; real trials always)")
    p_rep.add_argument("--label", action="append", help="only these policy labels (repeatable)")
    p_rep.add_argument("--task", action="append", help="only these tasks (repeatable)")
    p_rep.add_argument("--compare", nargs=2, action="append", metavar=("A", "B"),
                       help="report label A minus label B (repeatable; default: the two labels, if exactly two)")
    p_rep.add_argument("--title", default="egosim report")

    p_real = sub.add_parser("real", help="real-robot trials: add one, or import a CSV")
    real_sub = p_real.add_subparsers(dest="real_command", required=True, metavar="{add,import}")
    p_add = real_sub.add_parser("add", help="store one real-robot trial")
    p_add.add_argument("--task", required=True)
    p_add.add_argument("--embodiment", required=True)
    p_add.add_argument("--policy", required=True, help="policy label, as in sim runs (e.g. pretrained)")
    p_add.add_argument("--checkpoint", help="checkpoint name or hash")
    p_add.add_argument("--trial", required=True, help="trial number (integer >= 0)")
    p_add.add_argument("--milestones", help="reached milestones, separated by ';' or ','")
    p_add.add_argument("--score", help="rubric score in [0, 1] (instead of, or consistent with, milestones)")
    p_add.add_argument("--success", help="true/false (default with milestones: all reached)")
    p_add.add_argument("--operator")
    p_add.add_argument("--notes")
    p_add.add_argument("--video", help="path or URL of the trial's recording")
    p_imp = real_sub.add_parser("import", help="store the trials of a CSV file (bad rows are listed, good kept)")
    p_imp.add_argument("file")
    for p in (p_add, p_imp):
        p.add_argument("--store", default=default_store, help=f"results store (default {default_store})")
        p.add_argument("--run-id", default=REAL_RUN_ID, help="groups the trials of one robot session")
    p_list = sub.add_parser("list", help="registered env ids, tags and policy kinds")
    p_list.add_argument("--tag", default=None, help="only tasks with this tag (main, one_shot, g1, cloth)")
    p_serve = sub.add_parser(
        "serve", help="serve a policy over GR00T's or openpi's protocol (Hydra overrides)",
        description="Serve an egosim policy for remote evaluation or a robot. Overrides of egosim/conf/serve.yaml: "
        "policy=KIND checkpoint=PATH task=T embodiment=E protocol=gr00t|openpi host=ADDR port=P seed=S",
    )
    p_serve.add_argument("overrides", nargs="*", metavar="key=value")
    sub.metavar = "{" + ",".join(sub.choices) + "}"  # every subcommand, in the order they were added
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            return cmd_serve(args.overrides)
        if args.command == "eval":
            return cmd_eval(args.overrides)
        if args.command == "validate":
            return cmd_validate(args.overrides)
        if args.command == "collect":
            return cmd_collect(args.overrides)
        if args.command == "train":
            return cmd_train(args.overrides)
        if args.command == "import":
            return cmd_import(args)
        if args.command == "report":
            return cmd_report(args)
        if args.command == "real":
            return cmd_real(args)
        return cmd_list(args.tag)
    except EgosimError as exc:
        print(f"egosim {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"egosim {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
