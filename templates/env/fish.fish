# conda-fuse: {{ what }} without conda's shell function (fish).
{%- for s in steps %}
{%- match s %}
{%- when Step::Set { name, value } %}
set -gx {{ name }} {{ value }}
{%- when Step::Unset { name } %}
set -q {{ name }}; and set -e {{ name }}
{%- when Step::Source { path } %}
source {{ path }}
{%- endmatch %}
{%- endfor %}
