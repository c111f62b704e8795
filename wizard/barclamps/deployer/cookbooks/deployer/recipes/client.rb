# frozen_string_literal: true

# The roles this node holds, in the order its run list converges them, where an operator
# logged in on the node (or a script of theirs) finds them without the Chef server or the
# admin node: what a machine is for is the first question asked of it. chef-client sets
# node['roles'] from the run list it expanded. The run itself is recorded by this
# cookbook's handler (libraries/converge_status.rb), which loading the cookbook installs.
directory '/etc/crowbar' do
  owner 'root'
  group 'root'
  mode '0755'
end

file '/etc/crowbar/roles' do
  content "# The Crowbar roles of this node, written by chef-client (deployer::client): the\n" \
          "# answers file decides them, and the next run rewrites this file.\n" \
          "#{node['roles'].to_a.map { |role| "#{role}\n" }.join}"
  owner 'root'
  group 'root'
  mode '0644'
end
