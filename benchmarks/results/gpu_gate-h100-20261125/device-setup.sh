# Device-side setup for the GPU checks of issue 12 (not part of the project; carried in .whl/).
# A venv of the image's python: our carried packages (modelopt, locust, GE, tritonserver) in its
# own site, the image's site-packages (torch+CUDA, numpy 2) after it. Triton 2.51's Python stub
# breaks on BYTES tensors with numpy 2, so only the stub process gets numpy 1.26 first on its path.
set -x
IMGPY=${IMGPY:-$(command -v python3)}
IMG=${IMG:-$($IMGPY -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")}
rm -rf /tmp/venv /tmp/carried; mkdir -p /tmp/carried
$IMGPY -m venv --without-pip /tmp/venv || exit 1
SITE=$(/tmp/venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
tar -xJf .whl/gpusite.tar.xz -C /tmp/carried || exit 1
cp -r /tmp/carried/site/. $SITE/
cat > /tmp/carried/np1/_stubfix.py <<'PY'
# Only in Triton's Python stub: numpy 1.26 (the 2.51 stub mis-reads tensors under numpy 2), with
# the numpy-2 names the image's scipy uses; sklearn hidden from transformers (built for numpy 2).
import sys
sys.modules["sklearn"] = None
import numpy
for new, old in (("long", "int_"), ("ulong", "uint")):
    if not hasattr(numpy, new):
        setattr(numpy, new, getattr(numpy, old))
PY
echo "import os, sys; os.path.basename(os.readlink('/proc/self/exe')) == 'triton_python_backend_stub' and (sys.path.insert(0, '/tmp/carried/np1'), __import__('_stubfix'))" > $SITE/00-stub-numpy.pth
echo "import site; site.addsitedir('$IMG')" > $SITE/zz-image.pth
echo "$PWD" > $SITE/gates-src.pth
export PATH=/tmp/venv/bin:$PATH HF_HUB_OFFLINE=1 GX_ANALYTICS_ENABLED=false TRANSFORMERS_VERBOSITY=error PYTHONUNBUFFERED=1
export TORCH_EXTENSIONS_DIR=/tmp/torch_ext
set +x
python -c "import sys, numpy, pandas, scipy.stats, torch, transformers; print(sys.version, 'numpy', numpy.__version__, 'pandas', pandas.__version__, 'torch', torch.__version__, 'transformers', transformers.__version__, torch.cuda.is_available() and torch.cuda.get_device_name())"
