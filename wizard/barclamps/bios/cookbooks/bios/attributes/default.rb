# frozen_string_literal: true

# Where Dell's racadm may be installed (OpenManage puts it in one of these); the first
# executable one is used. The profile itself comes from the environment (node['bios']).
default['bios']['racadm'] = %w(
  /opt/dell/srvadmin/sbin/racadm
  /opt/dell/srvadmin/bin/idracadm7
  /usr/bin/racadm
)
