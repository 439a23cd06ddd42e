-- An Lmod module for a site install of conda-fuse (the wheel: `pip install --prefix ROOT
-- conda-fuse`; or the conda package installed into ROOT). Copy it to MODULEPATH/conda-fuse/VERSION.lua
-- and set `root`. Loading it puts the binary on PATH and defines the conda-fuse-* shell functions
-- in the user's shell (bash, zsh, fish), as `eval "$(conda-fuse shell-hook bash)"` in an rc file
-- would. tests/packaging.sh loads it with Debian's Lmod.
help([[conda-fuse: conda environments as single zip archives, served through FUSE]])
whatis("Name: conda-fuse")
local root = "/opt/conda-fuse"
prepend_path("PATH", pathJoin(root, "bin"))
local shell = myShellName()
local hook = pathJoin(root, "bin/conda-fuse") .. " shell-hook " .. shell
if shell == "fish" then
  execute{cmd = hook .. " | source", modeA = {"load"}}
elseif shell == "bash" or shell == "zsh" then
  execute{cmd = 'eval "$(' .. hook .. ')"', modeA = {"load"}}
end
