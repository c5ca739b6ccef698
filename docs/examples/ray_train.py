"""Fine-tune a Linnaeus project on a Ray cluster with Ray Train (docs/cluster.md).

Ray Train's TensorflowTrainer starts one worker per machine (or GPU) and sets
``TF_CONFIG`` in each; every worker runs ``linnaeus train`` on the same project
folder (a shared folder every node mounts at the same path). Worker 0 is the
chief: it alone writes the new version into the project. Needs ``pip install
'ray[train]'`` on every node besides Linnaeus with its ``cluster`` extra.

    python docs/examples/ray_train.py --address auto --workers 4 --gpu \
        --project /shared/projects/xray -- --model accurate
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys


def train_loop(config: dict) -> None:
    """One Ray Train worker: ``linnaeus train`` with the TF_CONFIG Ray Train set."""
    command = [sys.executable, "-m", "linnaeus.engine.cli", "train"]
    command += ["--project", config["project"], *config["options"]]
    subprocess.run(command, env=dict(os.environ), check=True)


def main() -> None:
    import ray
    from ray.train import RunConfig
    from ray.train import ScalingConfig
    from ray.train.tensorflow import TensorflowTrainer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default="auto", help="the Ray cluster ('local': here)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--gpu", action="store_true", help="one GPU per worker")
    parser.add_argument("--project", required=True)
    parser.add_argument("--storage", default=None, help="Ray Train's results folder (shared)")
    parser.add_argument("options", nargs="*", help="after --: options of `linnaeus train`")
    args = parser.parse_args()
    if args.address == "local":
        ray.init(num_cpus=args.workers, include_dashboard=False)
    else:
        ray.init(address=args.address)
    trainer = TensorflowTrainer(
        train_loop,
        train_loop_config={"project": os.path.abspath(args.project), "options": args.options},
        scaling_config=ScalingConfig(num_workers=args.workers, use_gpu=args.gpu),
        run_config=RunConfig(storage_path=args.storage and os.path.abspath(args.storage)),
    )
    trainer.fit()
    print(f"Trained; `linnaeus models --project {args.project}` lists the new version.")


if __name__ == "__main__":
    main()
