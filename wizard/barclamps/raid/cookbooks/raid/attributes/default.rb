# frozen_string_literal: true

# Where Broadcom's storcli (or Dell's build of it, perccli) may be installed; the first
# executable one is used. The layout itself comes from the environment (node['raid']).
default['raid']['storcli'] = %w(
  /opt/MegaRAID/storcli/storcli64
  /opt/MegaRAID/perccli/perccli64
  /usr/sbin/storcli64
)
