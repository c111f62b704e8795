# frozen_string_literal: true

name 'hadoop_data_disks'
maintainer 'Crowbar Wizard'
license 'Apache-2.0'
description 'A Hadoop data node\'s blank disks, formatted and mounted as PREFIX/0, PREFIX/1, ...'
version '1.0.0'
chef_version '>= 17'
%w(ubuntu debian redhat rocky almalinux).each do |platform|
  supports platform
end
