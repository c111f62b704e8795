# frozen_string_literal: true

name 'provisioner'
maintainer 'Crowbar Wizard'
license 'Apache-2.0'
description 'The node side of the provisioner: packages from the admin node, root\'s SSH keys, chef-client'
version '1.0.0'
chef_version '>= 17'
%w(ubuntu debian redhat rocky almalinux).each do |platform|
  supports platform
end
