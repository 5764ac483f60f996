"""Print what the GPU run relies on, with versions, then import the server's modules.

Exits non-zero when an import fails, so bench/gpu/run.sh stops before spending device time.
"""

import importlib
import platform
from importlib import metadata

import torch


def version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "missing"


def main() -> None:
    print(
        f"python {platform.python_version()}, torch {torch.__version__} (CUDA {torch.version.cuda})"
    )
    names = ("transformers", "tokenizers", "safetensors", "fastapi", "starlette", "uvicorn",
             "pydantic", "pydantic-settings", "python-multipart", "prometheus-client", "httpx",
             "uvloop", "httptools", "pytest")  # fmt: skip
    print(", ".join(f"{name} {version(name)}" for name in names))
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        print(f"GPU: {props.name}, {props.total_memory / 2**30:.0f} GiB, "
              f"{props.multi_processor_count} SMs")  # fmt: skip
    else:
        print("GPU: none visible to torch")
    importlib.import_module("app.api.app")  # every module the server imports
    importlib.import_module("app.cli")
    print("the server's imports: ok")


if __name__ == "__main__":
    main()
