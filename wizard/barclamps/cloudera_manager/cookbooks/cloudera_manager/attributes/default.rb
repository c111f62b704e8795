# frozen_string_literal: true

# What each platform family calls PostgreSQL's server package and service.
if platform_family?('rhel')
  default['cloudera_manager']['postgresql']['package'] = 'postgresql-server'
  default['cloudera_manager']['postgresql']['service'] = 'postgresql'
  default['cloudera_manager']['postgresql']['initdb'] = %w(postgresql-setup --initdb)
else
  default['cloudera_manager']['postgresql']['package'] = 'postgresql'
  default['cloudera_manager']['postgresql']['service'] = 'postgresql'
  default['cloudera_manager']['postgresql']['initdb'] = nil
end
