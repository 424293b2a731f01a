"""`tempclr convert CKPT -o OUT.safetensors`: a released VideoCLIP / TempCLR checkpoint as safetensors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tempclr_cli.commands._common import Verbose, command, log, writable


@command
def convert(
    checkpoint: Annotated[
        Path, typer.Argument(help="VideoCLIP's checkpoint_best.pt or a TempCLR checkpoint (fairseq).")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The .safetensors file to write.")],
    verbose: Verbose = False,
) -> None:
    """A released VideoCLIP / TempCLR checkpoint as safetensors.

    The fairseq file is read without running any of its code (config objects become
    inert stand-ins; anything else is refused), checked to load strictly, and its weights
    written to OUTPUT. The converted file serves as --checkpoint of align, retrieve and
    localize as the original does, faster and with no pickle at all; like the original, it
    needs bert-base-uncased's tokenizer (a tokenizer/ folder beside it, --tokenizer DIR, or
    the Hugging Face cache). Prints a JSON summary.

    Example:

    \b
      tempclr convert checkpoint_best.pt -o videoclip.safetensors
    """
    from tempclr_cli.core.errors import TempclrError
    from tempclr_cli.core.models.videoclip import convert as convert_file

    if output.suffix != ".safetensors":
        raise TempclrError(f"--output {output}: name it .safetensors")
    writable(output, "--output", folder=False)
    summary = convert_file(checkpoint, output)
    log(f"{summary['parameters']:,} parameters in {summary['tensors']} tensors -> {output}")
    print(json.dumps(summary))
