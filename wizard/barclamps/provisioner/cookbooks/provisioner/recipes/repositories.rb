# frozen_string_literal: true

# Packages come from the mirror the node was installed from (the admin node's, on a site
# without internet), for every later install and update too, and from nowhere else: the
# sources the installer wrote are replaced (they named the same mirror, and apt warns of
# every source it finds twice).
provisioning = node['crowbar']['provisioning']
mirror = provisioning['mirror']

if platform_family?('rhel')
  { 'BaseOS' => 'baseos', 'AppStream' => 'appstream' }.each do |repository, id|
    yum_repository "crowbar-#{id}" do
      description "#{repository} from the Crowbar admin node's mirror"
      baseurl "#{mirror}/#{repository}/x86_64/os"
      gpgcheck true
      enabled true
    end
  end
else
  components = provisioning['family'] == 'ubuntu' ? %w(main universe) : %w(main)
  file '/etc/apt/sources.list.d/ubuntu.sources' do
    action :delete
    notifies :update, 'apt_update[crowbar]', :immediately
  end

  file '/etc/apt/sources.list' do
    content "# Packages come from /etc/apt/sources.list.d/crowbar.sources (Chef writes it).\n"
    owner 'root'
    group 'root'
    mode '0644'
    notifies :update, 'apt_update[crowbar]', :immediately
  end

  template '/etc/apt/sources.list.d/crowbar.sources' do
    source 'crowbar.sources.erb'
    owner 'root'
    group 'root'
    mode '0644'
    variables(
      mirror: mirror,
      suites: [provisioning['release']],
      components: components
    )
    notifies :update, 'apt_update[crowbar]', :immediately
  end

  apt_update 'crowbar' do
    action :nothing
  end
end
