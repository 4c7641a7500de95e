"""Rewrite a .cu file into host C++ for the emulation (README.md): usage transform.py IN OUT.

kernel<<<grid, block, shmem, stream>>>(args);  ->
    sq_emu_launch(dim3(grid), dim3(block), (size_t)(shmem), (cudaStream_t)(stream),
                  [=](auto... p) { kernel(p...); }, args);
The emulator copies the arguments at the launch (as CUDA does) and runs the
lambda when the stream gets there. The launched name may be a template
instance, kernel<8>, or a call returning a kernel pointer, kernel_for(dc),
which is evaluated at the launch.
extern __shared__ T name[];  ->  T *name = (T *)sq_emu_dyn_smem();
"""
import re
import sys

src = open(sys.argv[1]).read()
pat = re.compile(r'([A-Za-z_][\w:]*(?:<[^<>;()]*>)?(?:\([^();]*\))?)<<<(.*?)>>>\((.*?)\);', re.S)
smem = re.compile(r'extern\s+__shared__\s+(?:__align__\(\s*\d+\s*\)\s+)?([A-Za-z_][\w:]*)\s+'
                  r'(?:__align__\(\s*\d+\s*\)\s+)?([A-Za-z_]\w*)\s*\[\s*\]\s*;')


def split_top(cfg):
    """The launch configuration split at its top-level commas."""
    depth, cur, parts = 0, '', []
    for ch in cfg:
        depth += ch in '([{'
        depth -= ch in ')]}'
        if ch == ',' and depth == 0:
            parts.append(cur.strip())
            cur = ''
        else:
            cur += ch
    parts.append(cur.strip())
    return parts


def rep(m):
    name, cfg, args = m.group(1), m.group(2), m.group(3)
    parts = split_top(cfg)
    if len(parts) < 2 or len(parts) > 4:
        sys.exit('launch configuration of %d parts in %s: %s' % (len(parts), sys.argv[1], cfg))
    shmem = parts[2] if len(parts) > 2 else '0'
    stream = parts[3] if len(parts) > 3 else '0'
    if name.endswith(')'):  # kernel_for(dc): which kernel is decided at the launch
        body = '[sq_emu_k_ = %s](auto... p) { sq_emu_k_(p...); }' % name
    else:
        body = '[=](auto... p) { %s(p...); }' % name
    args = args.strip()
    return 'sq_emu_launch(dim3(%s), dim3(%s), (size_t)(%s), (cudaStream_t)(%s), %s%s);' % (
        parts[0], parts[1], shmem, stream, body, ', ' + args if args else '')


out = pat.sub(rep, src)
out = smem.sub(lambda m: '%s *%s = (%s *)sq_emu_dyn_smem();' % (m.group(1), m.group(2), m.group(1)),
               out)
if re.search(r'extern\s+__shared__', out):
    sys.exit('untransformed extern __shared__ in ' + sys.argv[1])
if '<<<' in out:
    sys.exit('untransformed launch in ' + sys.argv[1])
open(sys.argv[2], 'w').write(out)
