# frozen_string_literal: true

# Every other node resolves through the site's DNS servers, searching the site's domain.
# Where systemd-resolved runs (Ubuntu) its drop-in says so; elsewhere /etc/resolv.conf does.
dns = node['dns']

if ::File.directory?('/run/systemd/resolve')
  directory '/etc/systemd/resolved.conf.d' do
    owner 'root'
    group 'root'
    mode '0755'
  end

  template '/etc/systemd/resolved.conf.d/crowbar.conf' do
    source 'resolved.conf.erb'
    owner 'root'
    group 'root'
    mode '0644'
    variables(servers: dns['servers'].to_a, domain: dns['domain'])
    notifies :restart, 'service[systemd-resolved]', :delayed
  end

  service 'systemd-resolved' do
    action :nothing
  end
else
  template '/etc/resolv.conf' do
    source 'resolv.conf.erb'
    owner 'root'
    group 'root'
    mode '0644'
    variables(servers: dns['servers'].to_a, domain: dns['domain'])
  end
end
