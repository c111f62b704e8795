# frozen_string_literal: true

# Cloudera Manager's packages come from the barclamp's repository_url (a local copy of
# Cloudera's archive, which needs credentials on the internet). Without one, they must come
# from the node's own package sources, and the run says so.
cm = node['cloudera_manager']
url = cm['repository_url']

if url.nil? || url.empty?
  log 'cloudera_manager: no repository' do
    message 'cloudera_manager: no repository_url: its packages must come from the node\'s own sources'
    level :warn
  end
  return
end

if platform_family?('rhel')
  yum_repository 'cloudera-manager' do
    description "Cloudera Manager #{cm['cdh_version']}"
    baseurl url
    gpgkey "#{url.chomp('/')}/RPM-GPG-KEY-cloudera"
    gpgcheck true
  end
else
  apt_repository 'cloudera-manager' do
    uri url
    distribution "#{node['lsb']['codename']}-cm#{cm['cdh_version']}"
    components %w(contrib)
    arch 'amd64'
    key "#{url.chomp('/')}/archive.key"
  end
end
