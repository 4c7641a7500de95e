import re, sys
src = open(sys.argv[1]).read()
# kernel<T><<<grid, block, shmem, stream>>>(args);  ->  sq_emu_launch(dim3(grid), dim3(block), [&] { kernel<T>(args); });
# the launched name may be a template instance or a call returning a kernel
# pointer: kernel_for(dc)<<<...>>>(args)
pat = re.compile(r'([A-Za-z_][\w:]*(?:<[^<>;()]*>)?(?:\([^();]*\))?)<<<(.*?)>>>\((.*?)\);', re.S)
# extern __shared__ T name[];  ->  T *name = (T *)sq_emu_dyn_smem();
smem = re.compile(r'extern\s+__shared__\s+(?:__align__\(\s*\d+\s*\)\s+)?([A-Za-z_][\w:]*)\s+(?:__align__\(\s*\d+\s*\)\s+)?([A-Za-z_]\w*)\s*\[\s*\]\s*;')
def rep(m):
    name, cfg, args = m.group(1), m.group(2), m.group(3)
    parts = [p.strip() for p in cfg.split(',')]
    # split top-level commas only
    depth = 0; cur = ''; parts = []
    for ch in cfg:
        if ch in '([': depth += 1
        if ch in ')]': depth -= 1
        if ch == ',' and depth == 0: parts.append(cur); cur = ''
        else: cur += ch
    parts.append(cur)
    shmem = parts[2].strip() if len(parts) > 2 else '0'
    return 'sq_emu_launch(dim3(%s), dim3(%s), [&] { %s(%s); }, (size_t)(%s));' % (parts[0].strip(), parts[1].strip(), name, args, shmem)
out = pat.sub(rep, src)
out = smem.sub(lambda m: '%s *%s = (%s *)sq_emu_dyn_smem();' % (m.group(1), m.group(2), m.group(1)), out)
if re.search(r'extern\s+__shared__', out): sys.exit('untransformed extern __shared__ in ' + sys.argv[1])
if '<<<' in out: sys.exit('untransformed launch in ' + sys.argv[1])
open(sys.argv[2], 'w').write(out)
