"""`tclearn model get` and `tclearn predict`: a block's model in the member's hands.

    tclearn model get --block N OUT [--node D]
    tclearn predict --block N INPUT OUTPUT [--node D] [--model FILE] [--slice LABELS]

D is a node.toml, a site folder holding one, or a node's data directory
(chain.sqlite and models/); default: the current folder. Exit codes
(`tclearn.cli.errors`): 1 a chain that does not verify, 2 bad options or no
node there, 3 no such block, a model this node does not hold or whose stored
bytes changed, 6 a model file whose hash is not block N's, or an input the
model cannot take.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tclearn.cli.errors import handle_errors

app = typer.Typer(help="The coalition's model, out of a node's chain and model store.", no_args_is_help=True)

NodeDir = Annotated[Path, typer.Option("--node", help="node.toml, a site folder, or a node's data directory.")]
BlockIndex = Annotated[int, typer.Option("--block", min=0, help="The block whose model to use.")]


@app.command("get")
@handle_errors
def get_command(
    out: Annotated[Path, typer.Argument(help="Where to write the model (safetensors).")],
    block: BlockIndex,
    node: NodeDir = Path("."),
) -> None:
    """Write block N's model (safetensors), its hash checked against the verified chain."""
    from tclearn.site.models import open_node_dir, write_model

    chain = open_node_dir(node)
    h, data = chain.model_bytes(block)
    write_model(data, out)
    typer.echo(f"block {block} ({chain.block(block).kind}): model {h} -> {out} ({len(data)} bytes)")


@handle_errors
def predict_command(
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="digits: PNG or .npy; segmentation: NIfTI.")],
    output: Annotated[Path, typer.Argument(help="digits: JSON of classes; segmentation: NIfTI mask.")],
    block: BlockIndex,
    node: NodeDir = Path("."),
    model: Annotated[Optional[Path], typer.Option(
        "--model", help="A model file to use (its hash must be block N's); default: the node's store.")] = None,
    slice_labels: Annotated[Optional[Path], typer.Option(
        "--slice", help="segmentation: NIfTI labels with the organ drawn on one axial slice.")] = None,
) -> None:
    """Predict with block N's model: a digit's class, or a NIfTI volume's mask from one labelled slice."""
    from tclearn.errors import ConfigError
    from tclearn.node.data_source import task_from_genesis
    from tclearn.site.models import open_node_dir
    from tclearn.site import predict as p

    chain = open_node_dir(node)
    h, data = chain.model_bytes(block, model)
    task = task_from_genesis(chain.genesis_payload)
    if getattr(task, "shape", None) is not None:  # slice-guided segmentation
        if slice_labels is None:
            raise ConfigError(f"task {task.name!r} segments from one labelled slice: give it with --slice LABELS")
        mask, affine = p.predict_volume(task, data, input_path, slice_labels)
        p.write_mask(output, mask, affine)
        typer.echo(f"block {block}: model {h[:16]}… -> mask of {int(mask.sum())} voxels in {output}")
        return
    classes = p.predict_digits(task, data, p.read_digit_images(input_path))
    p.write_json(output, {"block": block, "model_hash": h, "input": str(input_path), "classes": classes})
    typer.echo(f"block {block}: model {h[:16]}… -> class{'es' if len(classes) > 1 else ''} "
               f"{', '.join(map(str, classes))} ({output})")
