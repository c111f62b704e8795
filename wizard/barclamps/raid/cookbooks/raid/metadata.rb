# frozen_string_literal: true

name 'raid'
maintainer 'Crowbar Wizard'
license 'Apache-2.0'
description 'The RAID layout (an OS volume, data volumes) through Broadcom\'s storcli, where it is installed'
version '1.0.0'
chef_version '>= 17'
%w(ubuntu debian redhat rocky almalinux).each do |platform|
  supports platform
end
