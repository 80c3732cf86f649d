"""The ltx2 command with a probe, for the torchrun tests: `python cli_probe.py MODE ARGUMENTS...`.

record: what is handed to the MP4 writer is also saved, as OUTPUT.pt.
raise:  rank 1 finds its input bad as the sampling loop starts (a failure on one rank).
kill:   rank 1 is killed (SIGKILL) at the second step of the sampling loop.
status: the command as `python -m ltx2` runs it; each rank also writes its exit status to $LTX2_PROBE_STATUS/RANK
        (torchrun, when it is interrupted itself, reports none).
"""

import os
import signal
import sys

import torch

import ltx2
from ltx2.cli import main
from ltx2.pipelines import text_to_video

mode, arguments = sys.argv[1], sys.argv[2:]
if mode == "record":
    write = ltx2.encode_video

    def recording(video, **options):
        torch.save({"video": torch.as_tensor(video), "audio": options["audio"]}, f"{options['output_path']}.pt")
        return write(video, **options)

    ltx2.encode_video = recording
elif mode != "status" and os.environ.get("RANK") == "1":
    run = text_to_video.run_guidance_passes
    steps = []

    def faulty(*args, **kwargs):
        steps.append(None)
        if mode == "raise":
            raise ValueError("the latents on rank 1 are not finite")
        if len(steps) == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        return run(*args, **kwargs)

    text_to_video.run_guidance_passes = faulty
status = main(arguments)
if mode == "status":
    with open(os.path.join(os.environ["LTX2_PROBE_STATUS"], os.environ.get("RANK", "0")), "w") as file:
        file.write(str(status))
sys.exit(status)
