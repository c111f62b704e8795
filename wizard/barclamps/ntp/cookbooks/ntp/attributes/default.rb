# frozen_string_literal: true

# Where each platform family keeps chrony's configuration, and what it calls the service.
# What to follow and whom to serve comes from the environment (node['ntp'], pushed by
# crowbar-wizard), never from here.
if platform_family?('rhel')
  default['ntp']['chrony']['conf'] = '/etc/chrony.conf'
  default['ntp']['chrony']['service'] = 'chronyd'
else
  default['ntp']['chrony']['conf'] = '/etc/chrony/chrony.conf'
  default['ntp']['chrony']['service'] = 'chrony'
end
